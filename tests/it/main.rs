//! QuiverDB's integration tests, one binary: each module starts real
//! servers on port 0 (or embeds a database) and talks to them with real
//! clients. One binary links DataFusion once instead of once per file.
//!
//! Run one module with `cargo test --test it <module>::`, e.g.
//! `cargo test --test it crash::`.

mod clients;
mod common;
mod copy;
mod crash;
mod dml;
mod embedded;
mod files;
mod flight;
mod layers;
mod protocol;
mod protocol_abuse;
mod psql;
mod repl;
mod repl_terminal;
mod replication;
mod security;
mod server;
mod session_features;
mod sqllogictest;
mod storage;
mod tpch;
mod transactions;
mod transfer;
mod wire;
