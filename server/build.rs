//! The dashboard (`frontend/dist`) is embedded at compile time: rebuild when it appears
//! or changes, so a binary never silently carries a stale dashboard or none at all.
fn main() {
    println!("cargo:rerun-if-changed=../frontend/dist");
}
