//! Runtime outputs → ROS messages (REP 118 depth, optical-frame normals), and the camera_info
//! that matches the output resolution.
use ndarray::{Array2, Array3};

use crate::msg::{encodings, CameraInfo, Header, Image, RegionOfInterest};

/// mono8 image of `a` (class ids, ponder counts).
pub fn mono8(header: &Header, a: &Array2<u8>) -> Image {
    let (h, w) = a.dim();
    Image {
        header: header.clone(),
        height: h as u32,
        width: w as u32,
        encoding: encodings::MONO8.into(),
        is_bigendian: 0,
        step: w as u32,
        data: u8_bytes(a.as_slice(), a.iter()),
    }
}

/// rgb8 image of an H×W×3 array.
pub fn rgb8(header: &Header, a: &Array3<u8>) -> Image {
    let (h, w, _) = a.dim();
    rgb8_image(header, h, w, u8_bytes(a.as_slice(), a.iter()))
}

/// An rgb8 `Image` of `h × w` packed pixels `data`.
fn rgb8_image(header: &Header, h: usize, w: usize, data: Vec<u8>) -> Image {
    Image {
        header: header.clone(),
        height: h as u32,
        width: w as u32,
        encoding: encodings::RGB8.into(),
        is_bigendian: 0,
        step: 3 * w as u32,
        data,
    }
}

/// Little-endian bytes of `values`: one copy of a contiguous slice on little-endian hosts.
fn f32_bytes<'a>(contiguous: Option<&'a [f32]>, values: impl Iterator<Item = &'a f32>, n: usize) -> Vec<u8> {
    #[cfg(target_endian = "little")]
    if let Some(s) = contiguous {
        // SAFETY: any f32 is 4 initialised bytes; u8 has alignment 1; the length is in bytes.
        return unsafe { std::slice::from_raw_parts(s.as_ptr().cast::<u8>(), std::mem::size_of_val(s)) }.to_vec();
    }
    let _ = contiguous;
    let mut data = Vec::with_capacity(4 * n);
    values.for_each(|v| data.extend_from_slice(&v.to_le_bytes()));
    data
}

fn u8_bytes<'a>(contiguous: Option<&'a [u8]>, values: impl Iterator<Item = &'a u8>) -> Vec<u8> {
    match contiguous {
        Some(s) => s.to_vec(),
        None => values.copied().collect(),
    }
}

/// rgb8 colour segmentation: `palette[label]` per pixel (black for ids beyond the palette).
pub fn colorized(header: &Header, labels: &Array2<u8>, palette: &[[u8; 3]]) -> Image {
    let (h, w) = labels.dim();
    let mut lut = [[0u8; 3]; 256];
    lut.iter_mut().zip(palette).for_each(|(l, p)| *l = *p);
    let mut data = Vec::with_capacity(3 * h * w);
    labels.iter().for_each(|&l| data.extend_from_slice(&lut[l as usize]));
    rgb8_image(header, h, w, data)
}

/// 32FC1 depth in metres along the optical axis, NaN where invalid (REP 118), little-endian.
pub fn depth32(header: &Header, depth: &Array2<f32>) -> Image {
    let (h, w) = depth.dim();
    Image {
        header: header.clone(),
        height: h as u32,
        width: w as u32,
        encoding: encodings::TYPE_32FC1.into(),
        is_bigendian: 0,
        step: 4 * w as u32,
        data: f32_bytes(depth.as_slice(), depth.iter(), h * w),
    }
}

/// 32FC3 unit normals (x right, y down, z forward: the camera optical frame), little-endian.
pub fn normals32(header: &Header, normals: &Array3<f32>) -> Image {
    let (h, w, _) = normals.dim();
    Image {
        header: header.clone(),
        height: h as u32,
        width: w as u32,
        encoding: encodings::TYPE_32FC3.into(),
        is_bigendian: 0,
        step: 12 * w as u32,
        data: f32_bytes(normals.as_slice(), normals.iter(), h * w * 3),
    }
}

/// Nearest-neighbour resample (for the ponder map at the input resolution).
pub fn resize_nearest(a: &Array2<u8>, height: usize, width: usize) -> Array2<u8> {
    let (h, w) = a.dim();
    if (h, w) == (height, width) {
        return a.clone();
    }
    Array2::from_shape_fn((height, width), |(y, x)| a[[(y * h / height).min(h - 1), (x * w / width).min(w - 1)]])
}

/// `info` rescaled to `width × height` output pixels, with `header`. ROS pixel coordinates
/// have pixel centres at integers, so a principal point maps as `c' = (c + ½)·s − ½` and focal
/// lengths as `f' = f·s` (P's Tx, Ty scale with fx, fy). Distortion coefficients are in
/// normalised coordinates and stay; binning and ROI are reset (the output is the full image).
/// `None` when `info` has no size.
pub fn scaled_camera_info(info: &CameraInfo, header: &Header, width: u32, height: u32) -> Option<CameraInfo> {
    if info.width == 0 || info.height == 0 {
        return None;
    }
    let sx = width as f64 / info.width as f64;
    let sy = height as f64 / info.height as f64;
    let mut k = info.k;
    k[0] *= sx;
    k[1] *= sx; // skew
    k[2] = (k[2] + 0.5) * sx - 0.5;
    k[4] *= sy;
    k[5] = (k[5] + 0.5) * sy - 0.5;
    let mut p = info.p;
    p[0] *= sx;
    p[1] *= sx;
    p[2] = (p[2] + 0.5) * sx - 0.5;
    p[3] *= sx;
    p[5] *= sy;
    p[6] = (p[6] + 0.5) * sy - 0.5;
    p[7] *= sy;
    Some(CameraInfo {
        header: header.clone(),
        height,
        width,
        distortion_model: info.distortion_model.clone(),
        d: info.d.clone(),
        k,
        r: info.r,
        p,
        binning_x: 0,
        binning_y: 0,
        roi: RegionOfInterest::default(),
    })
}

/// A pinhole camera_info (no distortion) for `fx, fy, cx, cy` given in ROS pixel coordinates.
pub fn pinhole_camera_info(header: &Header, width: u32, height: u32, fx: f64, fy: f64, cx: f64, cy: f64) -> CameraInfo {
    CameraInfo {
        header: header.clone(),
        height,
        width,
        distortion_model: "plumb_bob".into(),
        d: vec![0.0; 5],
        k: [fx, 0.0, cx, 0.0, fy, cy, 0.0, 0.0, 1.0],
        r: [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0],
        p: [fx, 0.0, cx, 0.0, 0.0, fy, cy, 0.0, 0.0, 0.0, 1.0, 0.0],
        binning_x: 0,
        binning_y: 0,
        roi: RegionOfInterest::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_images_are_little_endian_with_nan_kept() {
        let h = Header { frame_id: "cam".into(), ..Default::default() };
        let d = Array2::from_shape_vec((1, 2), vec![1.5f32, f32::NAN]).unwrap();
        let m = depth32(&h, &d);
        assert_eq!((m.width, m.height, m.step, m.data.len()), (2, 1, 8, 8));
        assert_eq!(f32::from_le_bytes(m.data[0..4].try_into().unwrap()), 1.5);
        assert!(f32::from_le_bytes(m.data[4..8].try_into().unwrap()).is_nan());
        assert_eq!(m.header.frame_id, "cam");
        let n = normals32(&h, &Array3::from_shape_vec((1, 1, 3), vec![0.0, 0.0, -1.0]).unwrap());
        assert_eq!((n.encoding.as_str(), n.step, n.data.len()), ("32FC3", 12, 12));
    }

    #[test]
    fn camera_info_halved_keeps_the_optical_centre() {
        let h = Header::default();
        let info = pinhole_camera_info(&h, 640, 480, 500.0, 500.0, 319.5, 239.5);
        let s = scaled_camera_info(&info, &h, 320, 240).unwrap();
        assert_eq!((s.width, s.height), (320, 240));
        assert_eq!(s.k[0], 250.0);
        assert_eq!(s.k[2], 159.5);
        assert_eq!(s.k[5], 119.5);
        assert_eq!(s.p[2], 159.5);
        assert!(scaled_camera_info(&CameraInfo::default(), &h, 1, 1).is_none());
    }

    #[test]
    fn colorized_matches_the_runtime_and_strided_arrays_convert() {
        let labels = Array2::from_shape_fn((3, 5), |(y, x)| ((x + y) % 4) as u8);
        let palette = [[1, 2, 3], [4, 5, 6], [7, 8, 9]];
        let m = colorized(&Header::default(), &labels, &palette);
        let o = pag_runtime::Outputs {
            labels: labels.clone(),
            depth: Array2::zeros((3, 5)),
            normals: Array3::zeros((3, 5, 3)),
            scale: (1.0, 1.0),
        };
        assert_eq!(m.data, o.colorize(&palette).into_raw_vec_and_offset().0);
        let t = labels.t().to_owned();
        let strided = labels.t();
        assert_eq!(mono8(&Header::default(), &strided.to_owned()).data, mono8(&Header::default(), &t).data);
        let d = Array2::from_shape_fn((3, 5), |(y, x)| (y * 5 + x) as f32);
        let dt = d.t();
        let a = depth32(&Header::default(), &dt.to_owned());
        let b = Image { data: f32_bytes(None, dt.iter(), 15), ..a.clone() };
        assert_eq!(a, b);
    }

    #[test]
    fn nearest_resize() {
        let a = Array2::from_shape_fn((2, 2), |(y, x)| (2 * y + x) as u8);
        let r = resize_nearest(&a, 4, 4);
        assert_eq!(r[[0, 0]], 0);
        assert_eq!(r[[3, 3]], 3);
        assert_eq!(r[[1, 2]], 1);
    }
}
