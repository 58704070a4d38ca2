//! pag-ros
