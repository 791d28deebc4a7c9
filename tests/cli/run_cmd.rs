//! Tests of cairn run, status, watch and reproduce.
