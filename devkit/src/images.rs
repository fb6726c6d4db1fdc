//! Images as phones and screenshot tools write them, for tests of what the platform stores:
//! a real picture (encoded by the `image` crate) carrying the metadata a person would not
//! want to hand over — GPS position, camera, time, author and place in EXIF, XMP and text
//! chunks. [`PRIVATE_MARKERS`] lists the strings that must not survive an upload.

use std::io::Cursor;

use image::{ImageFormat, RgbImage, RgbaImage};

/// Strings the metadata of these images holds; none may be in what the platform stores.
pub const PRIVATE_MARKERS: &[&str] = &[
    "GPS 52.5200 13.4050",
    "Canon",
    "EOS R5X",
    "2026:12:07 10:11:12",
    "Alice Example",
    "Alexanderplatz",
];

/// A 24×16 picture with a gradient, so lossy encoding still shows where pixels moved.
fn picture() -> RgbImage {
    RgbImage::from_fn(24, 16, |x, y| {
        let x = u8::try_from(x * 10).unwrap_or(u8::MAX);
        let y = u8::try_from(y * 15).unwrap_or(u8::MAX);
        image::Rgb([x, y, 128])
    })
}

/// A TIFF structure (EXIF's body) with Make, Model, DateTime, an orientation of 6 (rotate 90°)
/// and the GPS position as a UserComment-like trailing string, little-endian as phones write.
fn exif_tiff() -> Vec<u8> {
    let strings: [(u16, &str); 3] = [
        (0x010f, "Canon\0"),
        (0x0110, "EOS R5X\0"),
        (0x0132, "2026:12:07 10:11:12\0"),
    ];
    let entries = strings.len() + 1;
    let data_start = 8 + 2 + 12 * entries + 4;
    let mut t = b"II\x2a\0\x08\0\0\0".to_vec();
    t.extend_from_slice(&u16::try_from(entries).unwrap_or(0).to_le_bytes());
    let mut data = Vec::new();
    for (tag, s) in strings {
        let offset = u32::try_from(data_start + data.len()).unwrap_or(0);
        t.extend_from_slice(&tag.to_le_bytes());
        t.extend_from_slice(&2u16.to_le_bytes());
        t.extend_from_slice(&u32::try_from(s.len()).unwrap_or(0).to_le_bytes());
        t.extend_from_slice(&offset.to_le_bytes());
        data.extend_from_slice(s.as_bytes());
    }
    t.extend_from_slice(&0x0112u16.to_le_bytes());
    t.extend_from_slice(&3u16.to_le_bytes());
    t.extend_from_slice(&1u32.to_le_bytes());
    t.extend_from_slice(&[6, 0, 0, 0]);
    t.extend_from_slice(&0u32.to_le_bytes());
    t.extend(data);
    t.extend_from_slice(b"GPS 52.5200 13.4050\0");
    t
}

fn encode(img: &image::DynamicImage, format: ImageFormat) -> anyhow::Result<Vec<u8>> {
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, format)?;
    Ok(out.into_inner())
}

/// A JPEG photo with EXIF (camera, time, orientation, GPS), XMP and a comment.
pub fn jpeg_with_exif() -> anyhow::Result<Vec<u8>> {
    let jpeg = encode(
        &image::DynamicImage::ImageRgb8(picture()),
        ImageFormat::Jpeg,
    )?;
    let segment = |marker: u8, payload: &[u8]| -> Vec<u8> {
        let mut s = vec![0xff, marker];
        s.extend_from_slice(&u16::try_from(payload.len() + 2).unwrap_or(0).to_be_bytes());
        s.extend_from_slice(payload);
        s
    };
    let mut exif = b"Exif\0\0".to_vec();
    exif.extend(exif_tiff());
    let mut out = jpeg[..2].to_vec();
    out.extend(segment(0xe1, &exif));
    out.extend(segment(
        0xe1,
        b"http://ns.adobe.com/xap/1.0/\0<x:xmpmeta><dc:creator>Alice Example</dc:creator></x:xmpmeta>",
    ));
    out.extend(segment(0xfe, b"taken at Alexanderplatz"));
    out.extend_from_slice(&jpeg[2..]);
    Ok(out)
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A PNG screenshot with text chunks (author, place, creation time) and an eXIf chunk.
pub fn png_with_text() -> anyhow::Result<Vec<u8>> {
    let rgba = image::DynamicImage::ImageRgba8(RgbaImage::from_fn(24, 16, |x, y| {
        let x = u8::try_from(x * 10).unwrap_or(u8::MAX);
        let y = u8::try_from(y * 15).unwrap_or(u8::MAX);
        image::Rgba([x, y, 7, 255])
    }));
    let png = encode(&rgba, ImageFormat::Png)?;
    let chunk = |kind: &[u8; 4], data: &[u8]| -> Vec<u8> {
        let mut c = u32::try_from(data.len())
            .unwrap_or(0)
            .to_be_bytes()
            .to_vec();
        let mut body = kind.to_vec();
        body.extend_from_slice(data);
        c.extend_from_slice(&body);
        c.extend_from_slice(&crc32(&body).to_be_bytes());
        c
    };
    // After the signature (8) and IHDR (25).
    let mut out = png[..33].to_vec();
    out.extend(chunk(b"tEXt", b"Author\0Alice Example"));
    out.extend(chunk(b"iTXt", b"Location\0\0\0\0\0Alexanderplatz"));
    out.extend(chunk(b"tEXt", b"Creation Time\x002026:12:07 10:11:12"));
    out.extend(chunk(b"eXIf", &exif_tiff()));
    out.extend_from_slice(&png[33..]);
    Ok(out)
}

/// A lossless WebP in the extended format with EXIF and XMP chunks.
pub fn webp_with_xmp() -> anyhow::Result<Vec<u8>> {
    let webp = encode(
        &image::DynamicImage::ImageRgb8(picture()),
        ImageFormat::WebP,
    )?;
    // The simple file is RIFF, size, WEBP, then one VP8L chunk.
    let vp8l = webp
        .get(12..)
        .ok_or_else(|| anyhow::anyhow!("short WebP"))?;
    let (width, height) = (24u32 - 1, 16u32 - 1);
    let mut vp8x = vec![0x08 | 0x04, 0, 0, 0];
    vp8x.extend_from_slice(&width.to_le_bytes()[..3]);
    vp8x.extend_from_slice(&height.to_le_bytes()[..3]);
    let riff_chunk = |fourcc: &[u8; 4], data: &[u8]| -> Vec<u8> {
        let mut c = fourcc.to_vec();
        c.extend_from_slice(&u32::try_from(data.len()).unwrap_or(0).to_le_bytes());
        c.extend_from_slice(data);
        if data.len() % 2 == 1 {
            c.push(0);
        }
        c
    };
    let mut body = b"WEBP".to_vec();
    body.extend(riff_chunk(b"VP8X", &vp8x));
    body.extend_from_slice(vp8l);
    body.extend(riff_chunk(b"EXIF", &exif_tiff()));
    body.extend(riff_chunk(
        b"XMP ",
        b"<x:xmpmeta><dc:creator>Alice Example</dc:creator><photoshop:City>Alexanderplatz</photoshop:City></x:xmpmeta>",
    ));
    let mut out = b"RIFF".to_vec();
    out.extend_from_slice(&u32::try_from(body.len()).unwrap_or(0).to_le_bytes());
    out.extend(body);
    Ok(out)
}

/// The pixels `bytes` decode to (RGBA), as a viewer would show them before applying EXIF's
/// orientation.
pub fn pixels(bytes: &[u8]) -> anyhow::Result<RgbaImage> {
    Ok(image::load_from_memory(bytes)?.to_rgba8())
}
