//! pag-calibration
