//! `KernelVersion`: parsing real release strings and comparing versions.

use std::fmt;
use std::str::FromStr;

use crate::error::SaferRingError;

/// A Linux kernel version, `major.minor.patch`; distro suffixes are dropped.
///
/// # Examples
/// ```
/// use safer_ring::KernelVersion;
/// let v: KernelVersion = "6.12.118+deb13-cloud-amd64".parse()?;
/// assert_eq!(v, KernelVersion::new(6, 12, 118));
/// assert!(v >= KernelVersion::new(6, 1, 0));
/// assert_eq!(v.to_string(), "6.12.118");
/// # Ok::<(), safer_ring::SaferRingError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KernelVersion {
    /// Major version.
    pub major: u32,
    /// Minor version.
    pub minor: u32,
    /// Patch level (0 when the release has none, e.g. `4.19`).
    pub patch: u32,
}

impl KernelVersion {
    /// A version from its parts.
    ///
    /// # Examples
    /// ```
    /// use safer_ring::KernelVersion;
    /// assert!(KernelVersion::new(6, 1, 0) > KernelVersion::new(5, 19, 17));
    /// ```
    pub const fn new(major: u32, minor: u32, patch: u32) -> Self {
        KernelVersion {
            major,
            minor,
            patch,
        }
    }

    /// Parses a release string such as `5.14.0-427.13.1.el9_4.x86_64` or `6.11.0-rc3`.
    ///
    /// # Errors
    /// [`SaferRingError::InvalidKernelVersion`] naming the input when it does not start with
    /// `MAJOR.MINOR[.PATCH]` followed by the end or a suffix introduced by `-`, `+`, `_` or `~`.
    ///
    /// # Examples
    /// ```
    /// use safer_ring::KernelVersion;
    /// let v = KernelVersion::from_string("5.14.0-427.13.1.el9_4.x86_64")?;
    /// assert_eq!(v, KernelVersion::new(5, 14, 0));
    /// let err = KernelVersion::from_string("linux").unwrap_err();
    /// assert!(err.to_string().contains("\"linux\""), "{err}");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn from_string(s: &str) -> Result<Self, SaferRingError> {
        let invalid = |why: &'static str| SaferRingError::InvalidKernelVersion {
            input: s.to_string(),
            reason: why,
        };
        let t = s.trim();
        let core_end = t.find(['-', '+', '_', '~']).unwrap_or(t.len());
        let (core, suffix) = t.split_at(core_end);
        if core.is_empty() {
            return Err(invalid("expected MAJOR.MINOR[.PATCH] at the start"));
        }
        if suffix.len() == 1 {
            return Err(invalid("a suffix separator must be followed by text"));
        }
        let mut parts = core.split('.');
        let mut num = |what: &'static str| -> Result<Option<u32>, SaferRingError> {
            match parts.next() {
                None => Ok(None),
                Some(p) if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) => {
                    Err(invalid(what))
                }
                Some(p) => p
                    .parse()
                    .map(Some)
                    .map_err(|_| invalid("a version number does not fit in 32 bits")),
            }
        };
        let major = num("the major version must be a decimal number")?
            .ok_or_else(|| invalid("missing major version"))?;
        let minor = num("the minor version must be a decimal number")?
            .ok_or_else(|| invalid("expected MAJOR.MINOR: the minor version is missing"))?;
        let patch = num("the patch level must be a decimal number")?.unwrap_or(0);
        if parts.next().is_some() {
            return Err(invalid(
                "more than three dot-separated numbers before the suffix",
            ));
        }
        Ok(KernelVersion {
            major,
            minor,
            patch,
        })
    }

    /// The running kernel's version, from `/proc/sys/kernel/osrelease` (or `uname`).
    ///
    /// # Errors
    /// When neither source can be read or parsed.
    ///
    /// # Examples
    /// ```
    /// use safer_ring::KernelVersion;
    /// let v = KernelVersion::current()?;
    /// assert!(v >= KernelVersion::new(2, 6, 0));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn current() -> Result<Self, SaferRingError> {
        let release = crate::kernel::sys::kernel_release().map_err(|e| {
            SaferRingError::FeatureDetectionFailed {
                step: "reading the kernel release",
                reason: e.to_string(),
            }
        })?;
        KernelVersion::from_string(&release)
    }
}

impl fmt::Display for KernelVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

impl FromStr for KernelVersion {
    type Err = SaferRingError;
    fn from_str(s: &str) -> Result<Self, SaferRingError> {
        KernelVersion::from_string(s)
    }
}

#[cfg(test)]
mod tests {
    use super::KernelVersion as V;

    #[test]
    fn real_release_strings() {
        for (s, v) in [
            ("6.18.44-fc-v595", V::new(6, 18, 44)),
            ("6.12.118+deb13-cloud-amd64", V::new(6, 12, 118)),
            ("5.10.0-46-cloud-amd64", V::new(5, 10, 0)),
            ("5.14.0-427.13.1.el9_4.x86_64", V::new(5, 14, 0)),
            ("6.8.0-1015-aws", V::new(6, 8, 0)),
            ("6.11.0-rc3", V::new(6, 11, 0)),
            ("4.19", V::new(4, 19, 0)),
            ("6.1.0-56-cloud-amd64\n", V::new(6, 1, 0)),
        ] {
            assert_eq!(s.parse::<V>().unwrap(), v, "{s:?}");
        }
    }

    #[test]
    fn rejects_garbage_naming_the_input() {
        for s in [
            "",
            "6",
            "abc",
            "6.x",
            "-1.2",
            "6..1",
            "6.1.2.3",
            "6.1-",
            "v6.1",
            "99999999999.1",
            "6.1 foo",
        ] {
            let e = s.parse::<V>().unwrap_err();
            assert!(e.to_string().contains(&format!("{s:?}")), "{s:?}: {e}");
        }
    }

    #[test]
    fn ordering_is_numeric() {
        assert!(V::new(5, 10, 0) < V::new(5, 19, 0));
        assert!(V::new(5, 19, 0) < V::new(6, 0, 0));
        assert!(V::new(6, 1, 9) < V::new(6, 1, 10));
    }
}
