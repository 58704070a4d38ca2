use crate::error::{PagError, Result};

/// The spatial shape of one 2-D convolution (ONNX `Conv` semantics, zero padding, groups 1):
/// input size, kernel size, stride, dilation and padding `[top, left, bottom, right]`.
///
/// Only valid geometries can be built: every size ≥ 1 and at least one output pixel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvGeometry {
    in_height: usize,
    in_width: usize,
    kernel_height: usize,
    kernel_width: usize,
    stride: usize,
    dilation: usize,
    padding: [usize; 4],
}

impl ConvGeometry {
    /// Validates and builds a geometry. `input` and `kernel` are `(height, width)`; `padding` is
    /// `[top, left, bottom, right]`. Errors when a size, the stride or the dilation is 0, or when
    /// the dilated kernel does not fit in the padded input.
    pub fn new(
        input: (usize, usize),
        kernel: (usize, usize),
        stride: usize,
        dilation: usize,
        padding: [usize; 4],
    ) -> Result<Self> {
        let geometry = ConvGeometry {
            in_height: input.0,
            in_width: input.1,
            kernel_height: kernel.0,
            kernel_width: kernel.1,
            stride,
            dilation,
            padding,
        };
        let bad = |why: &str| PagError::Shape {
            what: "convolution geometry".into(),
            expected: why.into(),
            got: format!("{geometry:?}"),
        };
        if input.0 == 0 || input.1 == 0 || kernel.0 == 0 || kernel.1 == 0 || stride == 0 || dilation == 0 {
            return Err(bad("input, kernel, stride and dilation all ≥ 1"));
        }
        let padded_h = input.0 + padding[0] + padding[2];
        let padded_w = input.1 + padding[1] + padding[3];
        if padded_h < geometry.span_height() || padded_w < geometry.span_width() {
            return Err(bad("a dilated kernel that fits in the padded input"));
        }
        Ok(geometry)
    }

    /// Input height.
    pub fn in_height(&self) -> usize {
        self.in_height
    }
    /// Input width.
    pub fn in_width(&self) -> usize {
        self.in_width
    }
    /// Kernel height.
    pub fn kernel_height(&self) -> usize {
        self.kernel_height
    }
    /// Kernel width.
    pub fn kernel_width(&self) -> usize {
        self.kernel_width
    }
    /// Stride (same along both axes).
    pub fn stride(&self) -> usize {
        self.stride
    }
    /// Dilation (same along both axes).
    pub fn dilation(&self) -> usize {
        self.dilation
    }
    /// Zero padding `[top, left, bottom, right]`.
    pub fn padding(&self) -> [usize; 4] {
        self.padding
    }
    /// Number of kernel taps, `kernel_height · kernel_width`.
    pub fn taps(&self) -> usize {
        self.kernel_height * self.kernel_width
    }
    fn span_height(&self) -> usize {
        self.dilation * (self.kernel_height - 1) + 1
    }
    fn span_width(&self) -> usize {
        self.dilation * (self.kernel_width - 1) + 1
    }
    /// Output height, `(ih + top + bottom − dilation·(kh − 1) − 1) / stride + 1`.
    pub fn out_height(&self) -> usize {
        (self.in_height + self.padding[0] + self.padding[2] - self.span_height()) / self.stride + 1
    }
    /// Output width, `(iw + left + right − dilation·(kw − 1) − 1) / stride + 1`.
    pub fn out_width(&self) -> usize {
        (self.in_width + self.padding[1] + self.padding[3] - self.span_width()) / self.stride + 1
    }
    /// True for a 1×1, stride-1, unpadded conv: output pixel `p` reads exactly input pixel `p`.
    pub fn is_pointwise(&self) -> bool {
        self.taps() == 1 && self.stride == 1 && self.padding == [0; 4]
    }
    /// Input coordinates (may be negative: padding) of tap (0, 0) for output pixel `(oy, ox)`.
    /// `[tap][output pixel]`: the input pixel (row-major) each tap of each output pixel reads, or
    /// `in_height · in_width` where it falls in the padding. Fixed by the geometry: kernels build
    /// it once and read their im2col through it.
    pub fn tap_table(&self) -> Vec<u32> {
        let (h, w, d) = (self.in_height, self.in_width, self.dilation);
        let (oh, ow) = (self.out_height(), self.out_width());
        let (n, on) = (h * w, oh * ow);
        let mut table = vec![0u32; self.taps() * on];
        for oy in 0..oh {
            for ox in 0..ow {
                let (y0, x0) = self.tap_origin(oy, ox);
                for ky in 0..self.kernel_height {
                    let iy = y0 + (ky * d) as isize;
                    for kx in 0..self.kernel_width {
                        let ix = x0 + (kx * d) as isize;
                        let inside = iy >= 0 && ix >= 0 && (iy as usize) < h && (ix as usize) < w;
                        table[(ky * self.kernel_width + kx) * on + oy * ow + ox] =
                            if inside { (iy as usize * w + ix as usize) as u32 } else { n as u32 };
                    }
                }
            }
        }
        table
    }

    pub(crate) fn tap_origin(&self, oy: usize, ox: usize) -> (isize, isize) {
        ((oy * self.stride) as isize - self.padding[0] as isize, (ox * self.stride) as isize - self.padding[1] as isize)
    }
}
