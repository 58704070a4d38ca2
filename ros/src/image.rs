//! Validation and decoding of incoming `sensor_msgs/Image` messages into the H×W×3 RGB array
//! the runtime takes. Every way a message can be wrong has its own [`Reject`] reason, counted
//! separately in the diagnostics.
use ndarray::Array3;
use pag_runtime::MAX_IMAGE_SIDE;

use crate::msg::{encodings, Image};

/// Why an input image was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum Reject {
    /// Encoding not in rgb8, bgr8, rgba8, bgra8, mono8.
    #[error("unsupported encoding")]
    Encoding,
    /// Width or height is 0.
    #[error("zero-sized image")]
    ZeroSize,
    /// Width or height above `MAX_IMAGE_SIDE` (16384).
    #[error("image side above the maximum")]
    TooLarge,
    /// `step` smaller than `width × bytes per pixel`.
    #[error("step smaller than width × bytes per pixel")]
    Step,
    /// `data` shorter than `step × height`.
    #[error("data shorter than step × height (truncated)")]
    Truncated,
    /// `data` longer than `step × height`.
    #[error("data longer than step × height")]
    SizeMismatch,
    /// The message could not even be deserialised (bad CDR).
    #[error("undecodable message")]
    Undecodable,
}

impl Reject {
    pub const ALL: [Reject; 7] = [
        Reject::Encoding,
        Reject::ZeroSize,
        Reject::TooLarge,
        Reject::Step,
        Reject::Truncated,
        Reject::SizeMismatch,
        Reject::Undecodable,
    ];

    /// Short key used in diagnostics (`rejected_<key>`).
    pub fn key(self) -> &'static str {
        match self {
            Reject::Encoding => "encoding",
            Reject::ZeroSize => "zero_size",
            Reject::TooLarge => "too_large",
            Reject::Step => "step",
            Reject::Truncated => "truncated",
            Reject::SizeMismatch => "size_mismatch",
            Reject::Undecodable => "undecodable",
        }
    }

    pub fn index(self) -> usize {
        Reject::ALL.iter().position(|r| *r == self).expect("in ALL")
    }
}

/// Channel layout of an accepted encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    Rgb8,
    Bgr8,
    Rgba8,
    Bgra8,
    Mono8,
}

impl Layout {
    pub fn from_encoding(encoding: &str) -> Option<Layout> {
        Some(match encoding {
            encodings::RGB8 => Layout::Rgb8,
            encodings::BGR8 => Layout::Bgr8,
            encodings::RGBA8 => Layout::Rgba8,
            encodings::BGRA8 => Layout::Bgra8,
            encodings::MONO8 => Layout::Mono8,
            _ => return None,
        })
    }

    pub fn bytes_per_pixel(self) -> usize {
        match self {
            Layout::Rgb8 | Layout::Bgr8 => 3,
            Layout::Rgba8 | Layout::Bgra8 => 4,
            Layout::Mono8 => 1,
        }
    }
}

/// Checks an image message without touching its pixels. `data` must be exactly
/// `step × height` bytes (REP: `data` size is `step * rows`); rows may be padded (`step` ≥
/// `width × bpp`). `is_bigendian` is irrelevant for 8-bit encodings and ignored.
pub fn validate(img: &Image) -> Result<Layout, Reject> {
    let layout = Layout::from_encoding(&img.encoding).ok_or(Reject::Encoding)?;
    let (w, h) = (img.width as usize, img.height as usize);
    if w == 0 || h == 0 {
        return Err(Reject::ZeroSize);
    }
    if w > MAX_IMAGE_SIDE || h > MAX_IMAGE_SIDE {
        return Err(Reject::TooLarge);
    }
    let step = img.step as usize;
    if step < w * layout.bytes_per_pixel() {
        return Err(Reject::Step);
    }
    // Cannot overflow: step < 2^32, h ≤ 2^14.
    let need = step * h;
    match img.data.len().cmp(&need) {
        std::cmp::Ordering::Less => Err(Reject::Truncated),
        std::cmp::Ordering::Greater => Err(Reject::SizeMismatch),
        std::cmp::Ordering::Equal => Ok(layout),
    }
}

/// Validates and converts to H×W×3 RGB (mono8 is replicated to three channels; alpha dropped).
pub fn to_rgb(img: &Image) -> Result<Array3<u8>, Reject> {
    let layout = validate(img)?;
    let (w, h, step) = (img.width as usize, img.height as usize, img.step as usize);
    let bpp = layout.bytes_per_pixel();
    let mut out = Vec::with_capacity(w * h * 3);
    for y in 0..h {
        let row = &img.data[y * step..y * step + w * bpp];
        match layout {
            Layout::Rgb8 => out.extend_from_slice(row),
            Layout::Bgr8 => row.chunks_exact(3).for_each(|p| out.extend_from_slice(&[p[2], p[1], p[0]])),
            Layout::Rgba8 => row.chunks_exact(4).for_each(|p| out.extend_from_slice(&p[..3])),
            Layout::Bgra8 => row.chunks_exact(4).for_each(|p| out.extend_from_slice(&[p[2], p[1], p[0]])),
            Layout::Mono8 => row.iter().for_each(|&v| out.extend_from_slice(&[v, v, v])),
        }
    }
    Ok(Array3::from_shape_vec((h, w, 3), out).expect("h × w × 3 bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn img(encoding: &str, w: u32, h: u32, step: u32, len: usize) -> Image {
        Image {
            encoding: encoding.into(),
            width: w,
            height: h,
            step,
            data: (0..len).map(|i| i as u8).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn every_reason() {
        assert_eq!(validate(&img("rgb16", 2, 2, 12, 24)), Err(Reject::Encoding));
        assert_eq!(validate(&img("", 2, 2, 6, 12)), Err(Reject::Encoding));
        assert_eq!(validate(&img("rgb8", 0, 2, 0, 0)), Err(Reject::ZeroSize));
        assert_eq!(validate(&img("rgb8", 2, 0, 6, 0)), Err(Reject::ZeroSize));
        assert_eq!(validate(&img("mono8", 100_000, 100_000, 100_000, 10)), Err(Reject::TooLarge));
        assert_eq!(validate(&img("mono8", u32::MAX, 1, u32::MAX, 10)), Err(Reject::TooLarge));
        assert_eq!(validate(&img("rgb8", 2, 2, 5, 10)), Err(Reject::Step));
        assert_eq!(validate(&img("rgb8", 2, 2, 6, 11)), Err(Reject::Truncated));
        assert_eq!(validate(&img("rgb8", 2, 2, 6, 13)), Err(Reject::SizeMismatch));
        assert_eq!(validate(&img("rgb8", 2, 2, u32::MAX, 13)), Err(Reject::Truncated));
        assert_eq!(validate(&img("bgra8", 2, 2, 8, 16)), Ok(Layout::Bgra8));
    }

    #[test]
    fn converts_every_layout_to_rgb() {
        // One row, two pixels, rows padded by 2 bytes.
        let i = Image {
            encoding: "bgr8".into(),
            width: 2,
            height: 1,
            step: 8,
            data: vec![1, 2, 3, 4, 5, 6, 0, 0],
            ..Default::default()
        };
        assert_eq!(to_rgb(&i).unwrap().into_raw_vec_and_offset().0, vec![3, 2, 1, 6, 5, 4]);
        let i = Image {
            encoding: "rgba8".into(),
            width: 2,
            height: 1,
            step: 8,
            data: vec![1, 2, 3, 9, 4, 5, 6, 9],
            ..Default::default()
        };
        assert_eq!(to_rgb(&i).unwrap().into_raw_vec_and_offset().0, vec![1, 2, 3, 4, 5, 6]);
        let i = Image {
            encoding: "bgra8".into(),
            width: 2,
            height: 1,
            step: 8,
            data: vec![1, 2, 3, 9, 4, 5, 6, 9],
            ..Default::default()
        };
        assert_eq!(to_rgb(&i).unwrap().into_raw_vec_and_offset().0, vec![3, 2, 1, 6, 5, 4]);
        let i = Image {
            encoding: "mono8".into(),
            width: 2,
            height: 2,
            step: 3,
            data: vec![7, 8, 0, 9, 10, 0],
            ..Default::default()
        };
        let a = to_rgb(&i).unwrap();
        assert_eq!(a.dim(), (2, 2, 3));
        assert_eq!(a.into_raw_vec_and_offset().0, vec![7, 7, 7, 8, 8, 8, 9, 9, 9, 10, 10, 10]);
        let i = Image {
            encoding: "rgb8".into(),
            width: 1,
            height: 2,
            step: 3,
            data: vec![1, 2, 3, 4, 5, 6],
            ..Default::default()
        };
        assert_eq!(to_rgb(&i).unwrap().into_raw_vec_and_offset().0, vec![1, 2, 3, 4, 5, 6]);
    }
}
