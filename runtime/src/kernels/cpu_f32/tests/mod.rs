//! Property tests of the f32 CPU kernels against direct references, on every ISA table this CPU
//! supports.
mod conv;
pub(crate) mod data;
mod gated_block;
mod multipool;
