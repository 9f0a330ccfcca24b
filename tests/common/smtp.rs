//! A local SMTP receiver on loopback that records the messages it accepts: it plays
//! the relay in the e-mail tests. Plain SMTP only (it offers neither STARTTLS nor
//! AUTH), so a route that requires STARTTLS must refuse to send to it. Hand-written
//! because what the tests need is a few lines of the protocol and a record of the
//! envelope; the SMTP server crates bring a TLS and auth stack the tests never use.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone)]
pub struct Mail {
    pub from: String,
    pub to: Vec<String>,
    /// Headers and body as received (dot-stuffing undone).
    pub data: String,
}

impl Mail {
    /// A header's value (first occurrence, unfolded).
    pub fn header(&self, name: &str) -> Option<String> {
        let head = self.data.split("\r\n\r\n").next()?;
        let mut out: Option<String> = None;
        for line in head.split("\r\n") {
            if let Some(v) = out.as_mut().filter(|_| line.starts_with([' ', '\t'])) {
                v.push_str(line.trim_start());
                continue;
            }
            if out.is_some() {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                if k.eq_ignore_ascii_case(name) {
                    out = Some(v.trim().to_owned());
                }
            }
        }
        out
    }

    /// The body as text: quoted-printable (what lettre picks for long or non-ASCII
    /// lines) decoded, other encodings as received.
    pub fn body(&self) -> String {
        let raw = self
            .data
            .split_once("\r\n\r\n")
            .map(|(_, b)| b)
            .unwrap_or("");
        let qp = self
            .header("content-transfer-encoding")
            .is_some_and(|e| e.eq_ignore_ascii_case("quoted-printable"));
        if !qp {
            return raw.to_owned();
        }
        let joined = raw.replace("=\r\n", "");
        let b = joined.as_bytes();
        let mut out = Vec::with_capacity(b.len());
        let mut i = 0;
        while i < b.len() {
            let hex = b
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok());
            match (b[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
                (b'=', Some(byte)) => {
                    out.push(byte);
                    i += 3;
                }
                (c, _) => {
                    out.push(c);
                    i += 1;
                }
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    }
}

#[derive(Clone)]
pub struct SmtpReceiver {
    pub port: u16,
    pub mails: Arc<Mutex<Vec<Mail>>>,
    /// The reply to RCPT TO (e.g. "550 5.1.1 no such user"); `None` accepts.
    pub refuse_rcpt: Arc<Mutex<Option<String>>>,
}

impl SmtpReceiver {
    pub fn start() -> SmtpReceiver {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let r = SmtpReceiver {
            port: listener.local_addr().expect("addr").port(),
            mails: Arc::default(),
            refuse_rcpt: Arc::default(),
        };
        let me = r.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let me = me.clone();
                std::thread::spawn(move || me.serve(stream));
            }
        });
        r
    }

    pub fn received(&self) -> Vec<Mail> {
        self.mails.lock().unwrap().clone()
    }

    fn serve(&self, s: TcpStream) {
        let mut w = s.try_clone().expect("clone stream");
        let mut r = BufReader::new(s);
        let mut say = |line: &str| w.write_all(format!("{line}\r\n").as_bytes()).is_ok();
        if !say("220 127.0.0.1 guardrail-test ESMTP") {
            return;
        }
        let (mut from, mut to) = (String::new(), Vec::new());
        let mut line = String::new();
        loop {
            line.clear();
            if r.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let cmd = line.trim_end().to_owned();
            let upper = cmd.to_ascii_uppercase();
            let ok = if upper.starts_with("EHLO") {
                say("250-127.0.0.1") && say("250-8BITMIME") && say("250 SMTPUTF8")
            } else if upper.starts_with("HELO") || upper.starts_with("NOOP") {
                say("250 ok")
            } else if upper.starts_with("RSET") {
                from.clear();
                to.clear();
                say("250 ok")
            } else if upper.starts_with("MAIL FROM:") {
                from = address(&cmd[10..]);
                say("250 ok")
            } else if upper.starts_with("RCPT TO:") {
                match self.refuse_rcpt.lock().unwrap().clone() {
                    Some(reply) => say(&reply),
                    None => {
                        to.push(address(&cmd[8..]));
                        say("250 ok")
                    }
                }
            } else if upper == "DATA" {
                if !say("354 end with <CRLF>.<CRLF>") {
                    return;
                }
                let mut data = String::new();
                loop {
                    line.clear();
                    if r.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    if line == ".\r\n" || line == ".\n" {
                        break;
                    }
                    data.push_str(line.strip_prefix('.').unwrap_or(&line));
                }
                self.mails.lock().unwrap().push(Mail {
                    from: std::mem::take(&mut from),
                    to: std::mem::take(&mut to),
                    data,
                });
                say("250 queued")
            } else if upper.starts_with("QUIT") {
                say("221 bye");
                return;
            } else {
                say("502 command not implemented")
            };
            if !ok {
                return;
            }
        }
    }
}

fn address(arg: &str) -> String {
    let a = arg.trim();
    let a = a.split_whitespace().next().unwrap_or(a);
    a.trim_start_matches('<').trim_end_matches('>').to_owned()
}
