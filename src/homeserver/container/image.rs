//! Image references: the name and tag testcontainers wants, and the image the repository's
//! script builds.

/// The image `scripts/build-synapse-image` builds, without its tag.
pub const BUILT_SYNAPSE_IMAGE: &str = "localhost/delayed-events-conformance/synapse";

/// `NAME[:TAG]` → (name, tag), tag `latest` when absent. A digest (`NAME@sha256:HEX`) splits
/// into `NAME@sha256` and `HEX`, which testcontainers joins back with `:`.
pub(super) fn split_reference(image: &str) -> (String, String) {
    let last_slash = image.rfind('/').map_or(0, |i| i + 1);
    match image[last_slash..].rfind(':') {
        Some(colon) => {
            let colon = last_slash + colon;
            (image[..colon].to_string(), image[colon + 1..].to_string())
        }
        None => (image.to_string(), "latest".to_string()),
    }
}

/// `ghcr.io/org/server:tag` → `server`.
pub(super) fn image_basename(image: &str) -> String {
    let (name, _) = split_reference(image);
    let name = name.split('@').next().unwrap_or(&name);
    name.rsplit('/').next().unwrap_or(name).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_references_split_into_name_and_tag() {
        let split = |s: &str| split_reference(s);
        assert_eq!(split("synapse"), ("synapse".into(), "latest".into()));
        assert_eq!(
            split("localhost/delayed-events-conformance/synapse:1.163.2"),
            (
                "localhost/delayed-events-conformance/synapse".into(),
                "1.163.2".into()
            )
        );
        assert_eq!(
            split("registry:5000/org/img"),
            ("registry:5000/org/img".into(), "latest".into())
        );
        assert_eq!(split("img@sha256:abc"), ("img@sha256".into(), "abc".into()));
        assert_eq!(image_basename("ghcr.io/element-hq/synapse:v1"), "synapse");
    }
}
