//! Minimal NumPy `.npy` (format version 1.0) writer and reader for little-endian `f32`
//! arrays in C order, readable with `numpy.load`.

use std::io::{self, Read, Write};

const MAGIC: &[u8; 6] = b"\x93NUMPY";

fn invalid(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

/// The header bytes (magic, version, length, dict, padding) for an `<f4` C-order array.
pub fn header(shape: &[usize]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape_str = match dims.len() {
        1 => format!("({},)", dims[0]),
        _ => format!("({})", dims.join(", ")),
    };
    let mut dict = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape_str}, }}");
    // Pad with spaces so that magic(6) + version(2) + len(2) + dict + '\n' is a multiple of 64.
    let unpadded = 10 + dict.len() + 1;
    dict.extend(std::iter::repeat_n(' ', (64 - unpadded % 64) % 64));
    dict.push('\n');
    let mut out = Vec::with_capacity(10 + dict.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[1, 0]);
    out.extend_from_slice(&(dict.len() as u16).to_le_bytes());
    out.extend_from_slice(dict.as_bytes());
    out
}

/// Write `data` (C order, `shape.iter().product()` elements) as a `.npy` file body.
pub fn write_f32<W: Write>(w: &mut W, shape: &[usize], data: &[f32]) -> io::Result<()> {
    let n: usize = shape.iter().product();
    if n != data.len() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("npy: shape {shape:?} needs {n} elements, got {}", data.len()),
        ));
    }
    let mut buf = header(shape);
    buf.reserve(data.len() * 4);
    for v in data {
        buf.extend_from_slice(&v.to_le_bytes());
    }
    w.write_all(&buf)
}

/// Read a `.npy` stream holding a little-endian `f32` C-order array; returns (shape, data).
pub fn read_f32<R: Read>(r: &mut R) -> io::Result<(Vec<usize>, Vec<f32>)> {
    let mut pre = [0u8; 8];
    r.read_exact(&mut pre)?;
    if &pre[..6] != MAGIC {
        return Err(invalid("npy: bad magic"));
    }
    let hlen = match pre[6] {
        1 => {
            let mut b = [0u8; 2];
            r.read_exact(&mut b)?;
            u16::from_le_bytes(b) as usize
        }
        2 | 3 => {
            let mut b = [0u8; 4];
            r.read_exact(&mut b)?;
            u32::from_le_bytes(b) as usize
        }
        v => return Err(invalid(format!("npy: unsupported version {v}"))),
    };
    let mut hbuf = vec![0u8; hlen];
    r.read_exact(&mut hbuf)?;
    let h = String::from_utf8(hbuf).map_err(|_| invalid("npy: header is not UTF-8"))?;
    let field = |key: &str| -> io::Result<&str> {
        let pat = format!("'{key}':");
        let start = h.find(&pat).ok_or_else(|| invalid(format!("npy: no {key} in header")))? + pat.len();
        Ok(h[start..].trim_start())
    };
    if !field("descr")?.starts_with("'<f4'") {
        return Err(invalid("npy: only '<f4' arrays are supported"));
    }
    if !field("fortran_order")?.starts_with("False") {
        return Err(invalid("npy: Fortran order is not supported"));
    }
    let s = field("shape")?;
    let close = s.find(')').ok_or_else(|| invalid("npy: bad shape"))?;
    let shape = s[1..close]
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(|d| d.parse::<usize>().map_err(|_| invalid(format!("npy: bad dimension {d:?}"))))
        .collect::<io::Result<Vec<usize>>>()?;
    let n: usize = shape.iter().product();
    let mut bytes = vec![0u8; n * 4];
    r.read_exact(&mut bytes)?;
    let data = bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
    Ok((shape, data))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_alignment_and_text() {
        for shape in [&[240usize, 320][..], &[240, 320, 3], &[7], &[]] {
            let h = header(shape);
            assert_eq!(h.len() % 64, 0, "{shape:?}");
            assert_eq!(*h.last().unwrap(), b'\n');
        }
        let h = header(&[2, 3]);
        let text = std::str::from_utf8(&h[10..]).unwrap();
        assert!(text.starts_with("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }"));
        assert!(std::str::from_utf8(&header(&[5])[10..]).unwrap().contains("'shape': (5,)"));
    }

    #[test]
    fn round_trip() {
        let mut data: Vec<f32> = (0..24).map(|i| i as f32 * 0.5 - 3.0).collect();
        data[5] = f32::NAN;
        let mut buf = Vec::new();
        write_f32(&mut buf, &[2, 4, 3], &data).unwrap();
        assert_eq!(buf.len(), 128 + 24 * 4); // 73-byte header padded to 128
        let (shape, back) = read_f32(&mut buf.as_slice()).unwrap();
        assert_eq!(shape, vec![2, 4, 3]);
        assert_eq!(back.len(), data.len());
        for (a, b) in back.iter().zip(&data) {
            assert_eq!(a.to_bits(), b.to_bits());
        }
        assert!(write_f32(&mut Vec::new(), &[2, 2], &data).is_err());
        assert!(read_f32(&mut &b"not an npy file"[..]).is_err());
    }
}
