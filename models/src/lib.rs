//! pag-models
