//! Reading input images with limits and clear errors.
use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use anyhow::{bail, Context, Result};
use image::{ImageReader, Limits, RgbImage};

/// The largest image side `pag` decodes.
pub const MAX_SIDE: u32 = 16384;

fn open_limited(path: &Path) -> Result<ImageReader<BufReader<File>>> {
    let mut head = [0u8; 16];
    let n = File::open(path)
        .and_then(|mut f| std::io::Read::read(&mut f, &mut head))
        .with_context(|| format!("cannot open image {}", path.display()))?;
    if !matches!(image::guess_format(&head[..n]), Ok(image::ImageFormat::Png | image::ImageFormat::Jpeg)) {
        bail!("{} is not an image pagrt can read (PNG or JPEG, judged by its content)", path.display());
    }
    let mut reader = ImageReader::open(path)
        .with_context(|| format!("cannot open image {}", path.display()))?
        .with_guessed_format()
        .with_context(|| format!("cannot read image {}", path.display()))?;
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(1 << 30);
    reader.limits(limits);
    Ok(reader)
}

/// Decode an image file as RGB; refuses non-images, empty and absurdly large images.
pub fn read_rgb(path: &Path) -> Result<RgbImage> {
    let (w, h) = open_limited(path)?.into_dimensions().with_context(|| {
        format!(
            "{}: cannot read the image header (pagrt accepts PNG or JPEG up to {MAX_SIDE}×{MAX_SIDE} pixels)",
            path.display()
        )
    })?;
    if w == 0 || h == 0 {
        bail!("{}: the image is empty ({w}×{h})", path.display());
    }
    let img = open_limited(path)?.decode().with_context(|| format!("{}: cannot decode the image", path.display()))?;
    Ok(img.to_rgb8())
}
