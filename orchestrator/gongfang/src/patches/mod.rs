//! Submitted patches (`patch_mode = "submit"`): the build folder in memory with diffs and tar
//! archives applied to it ([`source`]), and the pipeline that takes each queued patch through
//! an isolated build and a staged trial to the team's live service ([`pipeline`]).

pub mod pipeline;
pub mod source;

pub use pipeline::{Pipeline, image_tag};
pub use source::{Fixed, PatchError, SourceLimits, SourceTree};
