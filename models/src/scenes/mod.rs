//! Deterministic procedural indoor scenes rendered by ray casting, with exact
//! per-pixel ground truth (semantic label, metric depth, surface normal).
//!
//! * [`Scene::random`] builds a room with furniture-like primitives from a seed.
//! * [`Scene::render`] casts one ray through each pixel centre and returns a [`Frame`].
//! * [`Trajectory`] gives smooth, closed camera paths for video-like sequences.
//! * [`write_dataset`] writes PNG / `.npy` training samples (see [`npy`]).

mod accel;
pub mod camera;
pub mod dataset;
mod generate;
pub mod geometry;
pub mod render;
pub mod scene;
pub mod texture;
pub mod trajectory;

pub use camera::{CameraMount, Intrinsics, Pose, DEFAULT_HFOV_DEG};
pub use dataset::{write_dataset, DatasetSpec, SceneError};
pub use geometry::{Shape, Vec3};
pub use render::{colorize_labels, Frame};
pub use scene::{Object, Scene};
pub use texture::{Material, Texture};
pub use trajectory::Trajectory;

/// Number of semantic classes.
pub const NUM_CLASSES: usize = 8;

/// Semantic class names, indexed by label id.
pub const CLASS_NAMES: [&str; NUM_CLASSES] =
    ["floor", "wall", "ceiling", "table", "cabinet", "pillar", "ball", "picture"];

/// Display colour of each class (for visualising label maps).
pub const PALETTE: [[u8; 3]; NUM_CLASSES] = [
    [128, 64, 128],  // floor: purple
    [70, 130, 180],  // wall: steel blue
    [230, 230, 120], // ceiling: pale yellow
    [220, 20, 60],   // table: crimson
    [0, 160, 80],    // cabinet: green
    [255, 140, 0],   // pillar: orange
    [0, 210, 255],   // ball: cyan
    [255, 0, 200],   // picture: magenta
];

/// Label value of pixels where no surface was hit (never happens inside a closed room).
pub const LABEL_NONE: u8 = 255;

/// Semantic class of a surface; `class as u8` is the label id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Class {
    Floor = 0,
    Wall = 1,
    Ceiling = 2,
    Table = 3,
    Cabinet = 4,
    Pillar = 5,
    Ball = 6,
    Picture = 7,
}

impl Class {
    pub const ALL: [Class; NUM_CLASSES] = [
        Class::Floor,
        Class::Wall,
        Class::Ceiling,
        Class::Table,
        Class::Cabinet,
        Class::Pillar,
        Class::Ball,
        Class::Picture,
    ];

    pub fn id(self) -> u8 {
        self as u8
    }
    pub fn name(self) -> &'static str {
        CLASS_NAMES[self as usize]
    }
    pub fn from_id(id: u8) -> Option<Class> {
        Class::ALL.get(id as usize).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_table_consistent() {
        for (i, c) in Class::ALL.iter().enumerate() {
            assert_eq!(c.id() as usize, i);
            assert_eq!(Class::from_id(i as u8), Some(*c));
        }
        assert_eq!(Class::from_id(8), None);
        // Palette colours are pairwise well separated.
        for i in 0..NUM_CLASSES {
            for j in 0..i {
                let d: i32 = (0..3).map(|k| (PALETTE[i][k] as i32 - PALETTE[j][k] as i32).abs()).sum();
                assert!(d > 100, "{} vs {}", CLASS_NAMES[i], CLASS_NAMES[j]);
            }
        }
    }
}
