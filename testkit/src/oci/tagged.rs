//! One-call images, for tests that need an image rather than a particular one.

use super::{Descriptor, ImageSpec, LayerSpec, OciLayout, tar_gz};

impl OciLayout {
    /// Adds an image of `layers` (the rest of [`ImageSpec`] default), tags it `tag` and returns
    /// its manifest's descriptor.
    pub fn tagged_image(&self, tag: &str, layers: Vec<LayerSpec>) -> Descriptor {
        let d = self.add_image(ImageSpec {
            layers,
            ..Default::default()
        });
        self.tag(tag, &d);
        d
    }

    /// A one-layer image whose layer is a gzipped tar holding the file `f` with `content`,
    /// tagged `tag`: distinct content, distinct digests.
    pub fn file_image(&self, tag: &str, content: &[u8]) -> Descriptor {
        self.tagged_image(tag, vec![LayerSpec::bytes(tar_gz(&[("f", content)]))])
    }
}
