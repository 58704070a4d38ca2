//! Pictures a person wants to look at: palette segmentation with a legend, overlays, a depth
//! colormap with its metre scale, normals as RGB.
use font8x8::UnicodeFonts;
use image::{Rgb, RgbImage};
use ndarray::{Array2, Array3, ArrayView2, ArrayView3};

pub fn to_image(a: ArrayView3<u8>) -> RgbImage {
    let (h, w, _) = a.dim();
    RgbImage::from_fn(w as u32, h as u32, |x, y| {
        Rgb([a[[y as usize, x as usize, 0]], a[[y as usize, x as usize, 1]], a[[y as usize, x as usize, 2]]])
    })
}

/// Draw `text` (ASCII) with its top-left corner at (x, y), `scale` pixels per font pixel.
pub fn draw_text(img: &mut RgbImage, x: i64, y: i64, text: &str, color: Rgb<u8>, scale: i64) {
    for (i, ch) in text.chars().enumerate() {
        let Some(glyph) = font8x8::BASIC_FONTS.get(ch) else { continue };
        for (gy, row) in glyph.iter().enumerate() {
            for gx in 0..8 {
                if row >> gx & 1 == 0 {
                    continue;
                }
                for dy in 0..scale {
                    for dx in 0..scale {
                        let px = x + (i as i64 * 8 + gx) * scale + dx;
                        let py = y + gy as i64 * scale + dy;
                        if px >= 0 && py >= 0 && (px as u32) < img.width() && (py as u32) < img.height() {
                            img.put_pixel(px as u32, py as u32, color);
                        }
                    }
                }
            }
        }
    }
}

/// Segmentation colours with a legend of the classes present, to the right.
pub fn segmentation(labels: ArrayView2<u8>, palette: &[[u8; 3]], names: &[String]) -> RgbImage {
    let (h, w) = labels.dim();
    let mut counts = vec![0usize; names.len()];
    labels.iter().for_each(|&l| {
        if (l as usize) < counts.len() {
            counts[l as usize] += 1
        }
    });
    let present: Vec<usize> = (0..names.len()).filter(|&c| counts[c] > 0).collect();
    let legend_w = 12 + 8 * names.iter().map(|n| n.len()).max().unwrap_or(0) as u32 + 24;
    let mut img =
        RgbImage::from_pixel(w as u32 + legend_w, (h as u32).max(12 * present.len() as u32 + 8), Rgb([255, 255, 255]));
    for ((y, x), &l) in labels.indexed_iter() {
        img.put_pixel(x as u32, y as u32, Rgb(palette.get(l as usize).copied().unwrap_or([0, 0, 0])));
    }
    for (row, &c) in present.iter().enumerate() {
        let y0 = 4 + 12 * row as u32;
        for dy in 0..9 {
            for dx in 0..9 {
                img.put_pixel(w as u32 + 4 + dx, y0 + dy, Rgb(palette[c]));
            }
        }
        draw_text(&mut img, w as i64 + 16, y0 as i64, &names[c], Rgb([0, 0, 0]), 1);
    }
    img
}

/// `alpha` of the colour segmentation over the input image.
pub fn overlay(rgb: ArrayView3<u8>, labels: ArrayView2<u8>, palette: &[[u8; 3]], alpha: f32) -> RgbImage {
    let (h, w, _) = rgb.dim();
    RgbImage::from_fn(w as u32, h as u32, |x, y| {
        let (x, y) = (x as usize, y as usize);
        let p = palette.get(labels[[y, x]] as usize).copied().unwrap_or([0, 0, 0]);
        Rgb(std::array::from_fn(|c| (rgb[[y, x, c]] as f32 * (1.0 - alpha) + p[c] as f32 * alpha).round() as u8))
    })
}

/// Google's Turbo colormap (polynomial fit), t ∈ [0, 1].
pub fn turbo(t: f32) -> [u8; 3] {
    let t = t.clamp(0.0, 1.0) as f64;
    let r =
        0.13572138 + t * (4.61539260 + t * (-42.66032258 + t * (132.13108234 + t * (-152.94239396 + t * 59.28637943))));
    let g = 0.09140261 + t * (2.19418839 + t * (4.84296658 + t * (-14.18503333 + t * (4.27729857 + t * 2.82956604))));
    let b =
        0.10667330 + t * (12.64194608 + t * (-60.58204836 + t * (110.36276771 + t * (-89.90310912 + t * 27.34824973))));
    [r, g, b].map(|v| (v.clamp(0.0, 1.0) * 255.0).round() as u8)
}

/// Finite depth range (min, max) in metres, if any pixel is valid.
pub fn depth_range(depth: ArrayView2<f32>) -> Option<(f32, f32)> {
    depth
        .iter()
        .filter(|d| d.is_finite())
        .fold(None, |acc, &d| Some(acc.map_or((d, d), |(lo, hi): (f32, f32)| (lo.min(d), hi.max(d)))))
}

/// Turbo-coloured depth (near = blue, far = red), NaN black, with a metre scale bar to the right,
/// on `range` in metres (values outside it clamped to its ends; `None`: the picture's own range),
/// so that two pictures (a prediction and its ground truth) can share one scale.
pub fn depth_in(depth: ArrayView2<f32>, range: Option<(f32, f32)>) -> RgbImage {
    let (h, w) = depth.dim();
    let (lo, hi) = range.or_else(|| depth_range(depth)).unwrap_or((0.0, 1.0));
    let span = (hi - lo).max(1e-6);
    let bar_w = 70u32;
    let mut img = RgbImage::from_pixel(w as u32 + bar_w, h as u32, Rgb([255, 255, 255]));
    for ((y, x), &d) in depth.indexed_iter() {
        let c = if d.is_finite() { turbo((d - lo) / span) } else { [0, 0, 0] };
        img.put_pixel(x as u32, y as u32, Rgb(c));
    }
    let (top, bottom) = (10u32, (h as u32).saturating_sub(10).max(11));
    for y in top..bottom {
        let t = (y - top) as f32 / (bottom - 1 - top).max(1) as f32;
        for x in 0..14 {
            img.put_pixel(w as u32 + 6 + x, y, Rgb(turbo(t)));
        }
    }
    for i in 0..5 {
        let t = i as f32 / 4.0;
        let y = top as f32 + t * (bottom - 1 - top) as f32;
        draw_text(&mut img, w as i64 + 24, y as i64 - 4, &format!("{:.2}m", lo + t * span), Rgb([0, 0, 0]), 1);
    }
    img
}

/// Turbo-coloured ponder map (how many of `layers` gated blocks ran at each pixel: 0 = dark
/// blue, `layers` = dark red) with a discrete scale to the right, one swatch per count.
pub fn ponder(map: ArrayView2<u8>, layers: usize) -> RgbImage {
    let (h, w) = map.dim();
    let n = layers.max(1) as f32;
    let bar_w = 44u32;
    let rows = layers as u32 + 1;
    let mut img = RgbImage::from_pixel(w as u32 + bar_w, (h as u32).max(12 * rows + 8), Rgb([255, 255, 255]));
    for ((y, x), &v) in map.indexed_iter() {
        img.put_pixel(x as u32, y as u32, Rgb(turbo(v as f32 / n)));
    }
    // Largest count on top, like a colour bar.
    let step = ((h as u32).saturating_sub(8) / rows).clamp(10, 30);
    for i in 0..rows {
        let count = layers as u32 - i;
        let y0 = 4 + step * i;
        for dy in 0..step.saturating_sub(2).max(8) {
            for dx in 0..12 {
                if y0 + dy < img.height() {
                    img.put_pixel(w as u32 + 4 + dx, y0 + dy, Rgb(turbo(count as f32 / n)));
                }
            }
        }
        let ty = y0 as i64 + (step.saturating_sub(2).max(8) as i64 - 8) / 2;
        draw_text(&mut img, w as i64 + 20, ty, &count.to_string(), Rgb([0, 0, 0]), 1);
    }
    img
}

/// Normals as RGB: (n + 1) / 2 per axis (x right → red, y down → green, z forward → blue).
pub fn normals(n: ArrayView3<f32>) -> RgbImage {
    let (h, w, _) = n.dim();
    RgbImage::from_fn(w as u32, h as u32, |x, y| {
        Rgb(std::array::from_fn(|c| {
            let v = n[[y as usize, x as usize, c]];
            if v.is_finite() {
                ((v + 1.0) * 0.5 * 255.0).round().clamp(0.0, 255.0) as u8
            } else {
                0
            }
        }))
    })
}

/// Grey image of a u8 map (e.g. class ids), for the raw label PNG.
pub fn mono(a: &Array2<u8>) -> image::GrayImage {
    let (h, w) = a.dim();
    image::GrayImage::from_fn(w as u32, h as u32, |x, y| image::Luma([a[[y as usize, x as usize]]]))
}

/// H×W×3 array from an RGB image.
pub fn from_image(img: &RgbImage) -> Array3<u8> {
    Array3::from_shape_fn((img.height() as usize, img.width() as usize, 3), |(y, x, c)| {
        img.get_pixel(x as u32, y as u32)[c]
    })
}
