//! Image locations for `lade copy`, named like skopeo's transports.
