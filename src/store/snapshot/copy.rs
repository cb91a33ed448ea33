//! `COPY ... FROM STDIN (FORMAT binary)`: the one way snapshot rows go into the store.
//!
//! Values travel in each type's binary form, arrays as arrays: nothing is quoted, escaped or
//! parsed. Rows are encoded on a blocking thread and handed over in parts of about
//! [`PART_BYTES`] through a bounded channel, so the worker encodes while the store writes and
//! neither holds more than a few parts.

use tokio::sync::mpsc;
use uuid::Uuid;

use super::super::Tx;

/// A `COPY` is sent in parts of about this many bytes.
pub const PART_BYTES: usize = 1 << 20;

/// Rows in `COPY`'s binary format: a header, then per row its field count and each field as a
/// length (-1 for NULL) and the value, then a trailer.
#[derive(Default)]
pub struct CopyData(pub Vec<u8>);

impl CopyData {
    pub const HEADER: &'static [u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";
    pub const TRAILER: [u8; 2] = (-1i16).to_be_bytes();
    /// Element type oids of the arrays written.
    pub const BOOL: u32 = 16;
    pub const INT4: u32 = 23;
    pub const TEXT: u32 = 25;
    pub const UUID: u32 = 2950;

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn tuple(&mut self, fields: i16) {
        self.0.extend_from_slice(&fields.to_be_bytes());
    }

    pub fn field(&mut self, value: Option<&[u8]>) {
        match value {
            Some(value) => {
                self.0
                    .extend_from_slice(&(value.len() as i32).to_be_bytes());
                self.0.extend_from_slice(value);
            }
            None => self.0.extend_from_slice(&(-1i32).to_be_bytes()),
        }
    }

    pub fn uuid(&mut self, value: &Uuid) {
        self.field(Some(value.as_bytes()));
    }

    pub fn text(&mut self, value: Option<&str>) {
        self.field(value.map(str::as_bytes));
    }

    pub fn int4(&mut self, value: i32) {
        self.field(Some(&value.to_be_bytes()));
    }

    pub fn int8(&mut self, value: Option<i64>) {
        self.field(value.map(i64::to_be_bytes).as_ref().map(|b| &b[..]));
    }

    pub fn boolean(&mut self, value: bool) {
        self.field(Some(&[u8::from(value)]));
    }

    /// A `jsonb` value: the format version (1), then the JSON text.
    pub fn jsonb(&mut self, json: &str) {
        let mut value = Vec::with_capacity(json.len() + 1);
        value.push(1);
        value.extend_from_slice(json.as_bytes());
        self.field(Some(&value));
    }

    pub fn text_array(&mut self, items: Option<&[String]>) {
        match items {
            Some(items) => self.array(Self::TEXT, items.iter().map(|i| Some(i.as_bytes()))),
            None => self.field(None),
        }
    }

    /// A one-dimensional array of `element_type`, lower bound 1.
    pub fn array<T: AsRef<[u8]>>(
        &mut self,
        element_type: u32,
        items: impl ExactSizeIterator<Item = Option<T>> + Clone,
    ) {
        let start = self.0.len();
        self.0.extend_from_slice(&[0; 4]); // the field's length, known at the end
        let has_null = items.clone().any(|i| i.is_none());
        for word in [
            1,
            i32::from(has_null),
            element_type as i32,
            items.len() as i32,
            1,
        ] {
            self.0.extend_from_slice(&word.to_be_bytes());
        }
        for item in items {
            self.field(item.as_ref().map(AsRef::as_ref));
        }
        let length = (self.0.len() - start - 4) as i32;
        self.0[start..start + 4].copy_from_slice(&length.to_be_bytes());
    }
}

/// What the encoding thread hands the writer, table by table.
pub enum Part {
    /// Rows of the current table (the first part starts with the header).
    Rows(Vec<u8>),
    /// The current table's last rows (and the trailer); `None` when it has no rows at all, so
    /// that no `COPY` is sent for it.
    End(Option<Vec<u8>>),
}

/// The encoding side of a [`Part`] channel: it fills one table's data and sends it on in parts.
/// A table's data starts with the header, and a table nothing was encoded for sends no data.
pub struct Parts {
    sender: mpsc::Sender<Part>,
    data: CopyData,
    /// Whether a part of the current table was sent already.
    sent: bool,
}

impl Parts {
    pub fn new(sender: mpsc::Sender<Part>) -> Self {
        Self {
            sender,
            data: Self::fresh(),
            sent: false,
        }
    }

    fn fresh() -> CopyData {
        CopyData(CopyData::HEADER.to_vec())
    }

    /// The buffer a row is encoded into; call [`Self::flush`] after each relation.
    pub fn rows(&mut self) -> &mut CopyData {
        &mut self.data
    }

    /// Sends the rows so far once they make a part. False when the writer stopped taking them.
    pub fn flush(&mut self) -> bool {
        if self.data.len() < PART_BYTES {
            return true;
        }
        self.sent = true;
        let part = std::mem::take(&mut self.data).0;
        self.sender.blocking_send(Part::Rows(part)).is_ok()
    }

    /// Ends the current table. False when the writer stopped taking parts.
    pub fn end(&mut self) -> bool {
        let empty = !self.sent && self.data.len() == CopyData::HEADER.len();
        let mut data = std::mem::replace(&mut self.data, Self::fresh());
        self.sent = false;
        let last = match empty {
            true => None,
            false => {
                data.0.extend_from_slice(&CopyData::TRAILER);
                Some(data.0)
            }
        };
        self.sender.blocking_send(Part::End(last)).is_ok()
    }
}

/// Copies one table's parts from `parts` into the store with `statement`, a `COPY ... FROM
/// STDIN (FORMAT binary)`; sends nothing for a table without rows. False when the encoder
/// stopped before the table's end (it panicked or was cancelled, which its join reports).
pub async fn copy_table(
    tx: &mut Tx<'_>,
    statement: &'static str,
    parts: &mut mpsc::Receiver<Part>,
) -> sqlx::Result<bool> {
    let first = match parts.recv().await {
        None => return Ok(false),
        Some(Part::End(None)) => return Ok(true),
        Some(part) => part,
    };
    let mut copy = tx.copy_in_raw(statement).await?;
    let mut next = Some(first);
    loop {
        match next {
            None => {
                copy.abort("the encoder stopped").await?;
                return Ok(false);
            }
            Some(Part::Rows(data)) => copy.send(data).await?,
            Some(Part::End(last)) => {
                if let Some(last) = last {
                    copy.send(last).await?;
                }
                copy.finish().await?;
                return Ok(true);
            }
        };
        next = parts.recv().await;
    }
}

#[cfg(test)]
mod tests {
    use super::{CopyData, Part, Parts};

    #[test]
    fn a_table_without_rows_sends_no_data_and_one_with_rows_is_framed() {
        let (sender, mut received) = tokio::sync::mpsc::channel(4);
        let mut parts = Parts::new(sender);
        assert!(parts.end(), "a table nothing was encoded for");
        parts.rows().int4(7);
        assert!(parts.flush() && parts.end());
        assert!(matches!(received.try_recv(), Ok(Part::End(None))));
        let Ok(Part::End(Some(data))) = received.try_recv() else {
            panic!("the second table's data");
        };
        let mut expected = CopyData::HEADER.to_vec();
        expected.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 7]);
        expected.extend_from_slice(&CopyData::TRAILER);
        assert_eq!(data, expected);
    }

    #[test]
    fn copy_data_writes_lengths_nulls_and_arrays() {
        let mut row = CopyData::default();
        row.tuple(4);
        row.text(Some("a\tb"));
        row.text(None);
        row.int8(Some(-2));
        row.array(CopyData::TEXT, [Some("x"), None].into_iter());
        let mut expected: Vec<u8> =
            vec![0, 4, 0, 0, 0, 3, b'a', b'\t', b'b', 0xff, 0xff, 0xff, 0xff];
        expected.extend_from_slice(&[0, 0, 0, 8]);
        expected.extend_from_slice(&(-2i64).to_be_bytes());
        // length, ndim 1, has nulls, text, 2 elements from 1, "x", NULL
        expected.extend_from_slice(&[0, 0, 0, 29, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 25]);
        expected.extend_from_slice(&[0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 1, b'x']);
        expected.extend_from_slice(&[0xff, 0xff, 0xff, 0xff]);
        assert_eq!(row.0, expected);
    }
}
