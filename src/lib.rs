pub mod model;
pub mod raft;
pub mod render;
pub mod secrets;

pub mod proto {
    pub mod collector {
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/collector.v1.rs"));
            include!(concat!(env!("OUT_DIR"), "/collector.v1.serde.rs"));
        }
    }
}
