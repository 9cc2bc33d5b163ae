//! Step 21: inference.
