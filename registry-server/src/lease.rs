//! The sweep lease: how online garbage collection stays safe when several replicas share one storage.
//!
//! Within one process the commit lock keeps a sweep and a commit apart. Across replicas the lease object
//! `lade/gc-lease` (outside Distribution's tree) does: a collector takes it with a conditional create (or, once the
//! holder's expiry has passed, a compare-and-swap of the expired content), so one replica collects at a time; it then
//! waits the settle period, so that commits that began before the lease existed have finished, and sweeps. Every
//! commit (an upload's completion, a mount, a manifest put, the touch of a HEAD) first waits while a lease is held,
//! so no commit starts during a sweep. Releasing rewrites the lease as expired (compare-and-swap), never deletes it,
//! so a stale holder cannot remove a successor's lease.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::storage::{Driver, DriverError};

/// Where the lease lives, relative to the storage root.
pub const LEASE_PATH: &str = "lade/gc-lease";

#[derive(Debug, Clone, Serialize, Deserialize)]
struct LeaseBody {
    holder: String,
    /// Milliseconds since the Unix epoch after which the lease is void.
    expires_ms: u64,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64
}

fn body(holder: &str, expires_ms: u64) -> Vec<u8> {
    serde_json::to_vec(&LeaseBody {
        holder: holder.to_string(),
        expires_ms,
    })
    .expect("a lease serializes")
}

/// A held lease; give it back with [`Lease::release`].
#[derive(Debug)]
pub struct Lease {
    content: Vec<u8>,
}

/// The lease currently on storage and whether it is in force.
fn current(driver: &dyn Driver) -> Result<Option<(Vec<u8>, bool)>, DriverError> {
    match driver.get_content(LEASE_PATH) {
        Ok(bytes) => {
            let live = serde_json::from_slice::<LeaseBody>(&bytes)
                .is_ok_and(|lease| lease.expires_ms > now_ms());
            Ok(Some((bytes, live)))
        }
        Err(err) if err.is_not_found() => Ok(None),
        Err(err) => Err(err),
    }
}

/// Takes the lease for `ttl` unless another holder's lease is in force.
pub fn acquire(
    driver: &dyn Driver,
    holder: &str,
    ttl: Duration,
) -> Result<Option<Lease>, DriverError> {
    let content = body(holder, now_ms() + ttl.as_millis() as u64);
    let taken = match current(driver)? {
        None => driver.put_if_absent(LEASE_PATH, &content)?,
        Some((_, true)) => false,
        Some((expired, false)) => driver.replace_if(LEASE_PATH, &expired, &content)?,
    };
    Ok(taken.then_some(Lease { content }))
}

impl Lease {
    /// Gives the lease back (rewrites it as expired, if it is still this one).
    pub fn release(self, driver: &dyn Driver) -> Result<(), DriverError> {
        let holder = serde_json::from_slice::<LeaseBody>(&self.content)
            .map(|b| b.holder)
            .unwrap_or_default();
        driver
            .replace_if(LEASE_PATH, &self.content, &body(&holder, 0))
            .map(drop)
    }
}

/// Is a sweep lease in force?
pub fn held(driver: &dyn Driver) -> Result<bool, DriverError> {
    Ok(current(driver)?.is_some_and(|(_, live)| live))
}

/// Blocks while a sweep lease is in force (at most until it expires).
pub fn wait_while_held(driver: &dyn Driver) -> Result<(), DriverError> {
    while held(driver)? {
        std::thread::sleep(Duration::from_millis(200));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::object::ObjectDriver;

    #[test]
    fn one_holder_at_a_time_and_expired_leases_are_taken_over() {
        let d = ObjectDriver::in_memory();
        let a = acquire(&d, "a", Duration::from_secs(60)).unwrap().unwrap();
        assert!(held(&d).unwrap());
        assert!(acquire(&d, "b", Duration::from_secs(60)).unwrap().is_none());
        a.release(&d).unwrap();
        assert!(!held(&d).unwrap());
        let b = acquire(&d, "b", Duration::from_millis(1)).unwrap().unwrap();
        std::thread::sleep(Duration::from_millis(5));
        // b's lease expired: c takes over, and b's late release leaves c's lease alone.
        let c = acquire(&d, "c", Duration::from_secs(60)).unwrap().unwrap();
        b.release(&d).unwrap();
        assert!(held(&d).unwrap());
        wait_while_held(&ObjectDriver::in_memory()).unwrap();
        c.release(&d).unwrap();
        wait_while_held(&d).unwrap();
    }
}
