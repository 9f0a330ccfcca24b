//! A local HTTP receiver on loopback that records what it gets: it plays Slack,
//! PagerDuty and webhook receivers in tests. It can answer with any status, be "down"
//! (connections reset), or answer slowly.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Request {
    pub path: String,
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("JSON body")
    }
}

#[derive(Clone)]
pub enum Mode {
    Up {
        status: u16,
        content_type: &'static str,
        body: String,
    },
    Down,
    Slow(Duration),
}

#[derive(Clone)]
pub struct Receiver {
    pub url: String,
    pub requests: Arc<Mutex<Vec<Request>>>,
    pub mode: Arc<Mutex<Mode>>,
}

impl Receiver {
    pub fn start(mode: Mode) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let r = Receiver {
            url,
            requests: Arc::default(),
            mode: Arc::new(Mutex::new(mode)),
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

    pub fn ok_json(body: &str) -> Mode {
        Mode::Up {
            status: 200,
            content_type: "application/json",
            body: body.to_owned(),
        }
    }

    pub fn set(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }

    pub fn received(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }

    fn serve(&self, mut s: TcpStream) {
        let mode = self.mode.lock().unwrap().clone();
        if matches!(mode, Mode::Down) {
            return; // dropped: the client sees a reset or an empty reply
        }
        let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
        let mut buf = Vec::new();
        let mut chunk = [0u8; 8192];
        let head_end = loop {
            let n = match s.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            buf.extend_from_slice(&chunk[..n]);
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i;
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
        let mut lines = head.lines();
        let path = lines
            .next()
            .unwrap_or("")
            .split_whitespace()
            .nth(1)
            .unwrap_or("")
            .to_owned();
        let headers: HashMap<String, String> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        let len: usize = headers
            .get("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut body = buf[head_end + 4..].to_vec();
        while body.len() < len {
            let n = match s.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            body.extend_from_slice(&chunk[..n]);
        }
        let (status, ct, reply) = match mode {
            Mode::Up {
                status,
                content_type,
                body,
            } => (status, content_type, body),
            Mode::Slow(d) => {
                std::thread::sleep(d);
                (200, "application/json", "{}".to_owned())
            }
            Mode::Down => unreachable!(),
        };
        self.requests.lock().unwrap().push(Request {
            path,
            headers,
            body,
        });
        let _ = write!(s, "HTTP/1.1 {status} X\r\ncontent-type: {ct}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{reply}", reply.len());
    }
}
