//! Tests of diff, compare and find.
