//! Printing results as aligned text tables or JSON.

use std::io::Write;

use serde::Serialize;

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
    /// Findings only.
    Csv,
    /// Findings only: OCSF Compliance Finding objects, as a JSON array.
    Ocsf,
    /// Findings only: OCSF Compliance Finding objects, one per line (NDJSON).
    OcsfNdjson,
}

/// Prints `value` as pretty JSON on stdout.
pub fn json<T: Serialize + ?Sized>(value: &T) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value)?;
    writeln!(out)?;
    Ok(())
}

/// A plain text table: columns padded to their widest cell.
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(header: &[&str]) -> Table {
        Table {
            header: header.iter().map(|h| (*h).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn print(&self) -> anyhow::Result<()> {
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate() {
                if let Some(w) = widths.get_mut(i) {
                    *w = (*w).max(cell.chars().count());
                }
            }
        }
        let mut out = std::io::stdout().lock();
        let line = |cells: &[String], out: &mut dyn Write| -> std::io::Result<()> {
            let last = cells.len().saturating_sub(1);
            for (i, cell) in cells.iter().enumerate() {
                if i == last {
                    writeln!(out, "{cell}")?;
                } else {
                    let pad = widths[i].saturating_sub(cell.chars().count());
                    write!(out, "{cell}{}  ", " ".repeat(pad))?;
                }
            }
            Ok(())
        };
        line(&self.header, &mut out)?;
        for row in &self.rows {
            line(row, &mut out)?;
        }
        Ok(())
    }
}
