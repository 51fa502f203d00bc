//! A device as udev rules see it: its own keys, its properties and
//! attributes, and its parent chain. Detection fills these from sysfs; a
//! profile (`detect --json` of another machine) carries the same records.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Parent {
    pub kernel: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subsystem: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attrs: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Device {
    pub subsystem: String,
    /// The sysname (`KERNEL`).
    pub kernel: String,
    /// `/devices/...`
    pub devpath: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    /// udev properties known before the rules run (uevent, udev database,
    /// and ID_NET_DRIVER).
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
    /// Sysfs attributes the rules refer to.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attrs: BTreeMap<String, String>,
    /// Parents, nearest first.
    #[serde(default)]
    pub parents: Vec<Parent>,
    /// True for an RDMA device that does not exist yet (its driver is not
    /// loaded) and is evaluated as if it did.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub hypothetical: bool,
    /// How facts that sysfs does not show directly were derived.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl Device {
    pub fn modalias(&self) -> Option<&str> {
        self.properties.get("MODALIAS").map(String::as_str)
    }

    /// This device as the first element of its own parent chain (the
    /// `*S` keys match the device itself too).
    pub fn as_parent(&self) -> Parent {
        Parent {
            kernel: self.kernel.clone(),
            subsystem: Some(self.subsystem.clone()),
            driver: self.driver.clone(),
            attrs: self.attrs.clone(),
        }
    }
}
