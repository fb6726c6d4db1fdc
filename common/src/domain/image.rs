//! Uploaded images (receipts, evidence) without what their files say about the person who
//! made them: EXIF (GPS position, camera, time), XMP, IPTC, comments and thumbnails are
//! removed from JPEG, PNG and WebP files before anything is stored.
//!
//! Stripping works on the file's segments (JPEG markers, PNG chunks, WebP RIFF chunks) with an
//! allow-list: what draws the picture and its colours is kept byte for byte, everything else is
//! dropped. Nothing is decoded, so a 5 MiB upload costs about 5 MiB more, not the 50–100 MiB
//! of its pixels. The one EXIF field kept is Orientation, rewritten into a minimal EXIF block,
//! because a phone's receipt would otherwise show sideways.

/// The image formats accepted for receipts and evidence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageKind {
    Png,
    Jpeg,
    Webp,
}

impl ImageKind {
    /// Its media type.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Png => "image/png",
            Self::Jpeg => "image/jpeg",
            Self::Webp => "image/webp",
        }
    }
}

/// The image type of `bytes` by its magic number, if it is one we accept.
pub fn sniff(bytes: &[u8]) -> Option<ImageKind> {
    if bytes.starts_with(PNG_SIGNATURE) {
        Some(ImageKind::Png)
    } else if bytes.starts_with(&[0xff, 0xd8, 0xff]) {
        Some(ImageKind::Jpeg)
    } else if bytes.len() > 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        Some(ImageKind::Webp)
    } else {
        None
    }
}

/// The file could not be read as the image it claims to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the image file is malformed")]
pub struct Malformed;

/// `bytes` (an image of `kind`) without its metadata; the picture is the same.
pub fn strip_metadata(kind: ImageKind, bytes: &[u8]) -> Result<Vec<u8>, Malformed> {
    match kind {
        ImageKind::Jpeg => strip_jpeg(bytes),
        ImageKind::Png => strip_png(bytes),
        ImageKind::Webp => strip_webp(bytes),
    }
}

const PNG_SIGNATURE: &[u8] = &[0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a];
const EXIF_HEADER: &[u8] = b"Exif\0\0";
const ICC_HEADER: &[u8] = b"ICC_PROFILE\0";
const JFIF_HEADER: &[u8] = b"JFIF\0";
const ADOBE_HEADER: &[u8] = b"Adobe";
const ORIENTATION_TAG: u16 = 0x0112;

fn be16(b: &[u8], at: usize) -> Result<u16, Malformed> {
    let s = b.get(at..at + 2).ok_or(Malformed)?;
    Ok(u16::from_be_bytes([s[0], s[1]]))
}

fn be32(b: &[u8], at: usize) -> Result<u32, Malformed> {
    let s = b.get(at..at + 4).ok_or(Malformed)?;
    Ok(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

fn le32(b: &[u8], at: usize) -> Result<u32, Malformed> {
    let s = b.get(at..at + 4).ok_or(Malformed)?;
    Ok(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

fn usize_of(n: u32) -> Result<usize, Malformed> {
    usize::try_from(n).map_err(|_| Malformed)
}

// --- JPEG ------------------------------------------------------------------------------------

/// Keeps the segments that draw the picture (tables, frame, scans), JFIF without its
/// thumbnail, the ICC profile, Adobe's colour transform and the EXIF orientation; drops other
/// APPn segments (EXIF, XMP, IPTC, MPF's second pictures, maker notes), comments and whatever
/// follows the end of the image.
fn strip_jpeg(b: &[u8]) -> Result<Vec<u8>, Malformed> {
    let mut out = Vec::with_capacity(b.len());
    out.extend_from_slice(&[0xff, 0xd8]);
    let mut at = 2;
    loop {
        // Markers may be preceded by fill bytes (0xFF).
        if b.get(at) != Some(&0xff) {
            return Err(Malformed);
        }
        while b.get(at) == Some(&0xff) {
            at += 1;
        }
        let marker = *b.get(at).ok_or(Malformed)?;
        at += 1;
        match marker {
            0xd9 => {
                out.extend_from_slice(&[0xff, 0xd9]);
                return Ok(out);
            }
            0xd0..=0xd7 | 0x01 => {
                out.extend_from_slice(&[0xff, marker]);
                continue;
            }
            _ => {}
        }
        let len = usize::from(be16(b, at)?);
        if len < 2 {
            return Err(Malformed);
        }
        let segment = b.get(at..at + len).ok_or(Malformed)?;
        let payload = &segment[2..];
        match marker {
            0xe0 if payload.starts_with(JFIF_HEADER) && payload.len() >= 14 => {
                // JFIF without its thumbnail: version, units and density, then 0×0.
                let mut app0 = payload[..12].to_vec();
                app0.extend_from_slice(&[0, 0]);
                push_segment(&mut out, 0xe0, &app0)?;
            }
            0xe1 if payload.starts_with(EXIF_HEADER) => {
                if let Some(o) = tiff_orientation(&payload[EXIF_HEADER.len()..]) {
                    let mut app1 = EXIF_HEADER.to_vec();
                    app1.extend_from_slice(&minimal_tiff(o));
                    push_segment(&mut out, 0xe1, &app1)?;
                }
            }
            0xe2 if payload.starts_with(ICC_HEADER) => out.extend_from_slice(&b[at - 2..at + len]),
            0xee if payload.starts_with(ADOBE_HEADER) => {
                out.extend_from_slice(&b[at - 2..at + len]);
            }
            0xe0..=0xef | 0xfe => {}
            _ => out.extend_from_slice(&b[at - 2..at + len]),
        }
        at += len;
        if marker == 0xda {
            // Entropy-coded data runs to the next marker that is not a stuffed zero or a
            // restart marker.
            let start = at;
            while at + 1 < b.len() {
                if b[at] == 0xff && b[at + 1] != 0 && !(0xd0..=0xd7).contains(&b[at + 1]) {
                    break;
                }
                at += 1;
            }
            if at + 1 >= b.len() {
                return Err(Malformed);
            }
            out.extend_from_slice(&b[start..at]);
        }
    }
}

fn push_segment(out: &mut Vec<u8>, marker: u8, payload: &[u8]) -> Result<(), Malformed> {
    let len = u16::try_from(payload.len() + 2).map_err(|_| Malformed)?;
    out.extend_from_slice(&[0xff, marker]);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(payload);
    Ok(())
}

/// The Orientation (1–8) of a TIFF structure's first IFD, if it has a valid one other than 1.
fn tiff_orientation(tiff: &[u8]) -> Option<u16> {
    let little = match tiff.get(..2)? {
        b"II" => true,
        b"MM" => false,
        _ => return None,
    };
    let u16_at = |at: usize| -> Option<u16> {
        let s = tiff.get(at..at + 2)?;
        Some(if little {
            u16::from_le_bytes([s[0], s[1]])
        } else {
            u16::from_be_bytes([s[0], s[1]])
        })
    };
    let u32_at = |at: usize| -> Option<usize> {
        let s = tiff.get(at..at + 4)?;
        let n = if little {
            u32::from_le_bytes([s[0], s[1], s[2], s[3]])
        } else {
            u32::from_be_bytes([s[0], s[1], s[2], s[3]])
        };
        usize::try_from(n).ok()
    };
    if u16_at(2)? != 42 {
        return None;
    }
    let ifd = u32_at(4)?;
    let count = usize::from(u16_at(ifd)?);
    (0..count).find_map(|i| {
        let entry = ifd.checked_add(2 + 12 * i)?;
        // SHORT, one value, stored in the entry itself.
        if u16_at(entry)? == ORIENTATION_TAG && u16_at(entry + 2)? == 3 {
            let o = u16_at(entry + 8)?;
            ((2..=8).contains(&o)).then_some(o)
        } else {
            None
        }
    })
}

/// A big-endian TIFF structure whose one IFD holds only `orientation`.
fn minimal_tiff(orientation: u16) -> Vec<u8> {
    let mut t = b"MM\0\x2a\0\0\0\x08".to_vec();
    t.extend_from_slice(&1u16.to_be_bytes());
    t.extend_from_slice(&ORIENTATION_TAG.to_be_bytes());
    t.extend_from_slice(&3u16.to_be_bytes());
    t.extend_from_slice(&1u32.to_be_bytes());
    t.extend_from_slice(&orientation.to_be_bytes());
    t.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    t
}

// --- PNG -------------------------------------------------------------------------------------

/// Chunks that draw the picture or set its colours (animation included); text (tEXt, zTXt,
/// iTXt), time, EXIF and every other chunk are dropped, as is anything after IEND.
const PNG_KEEP: &[&[u8; 4]] = &[
    b"IHDR", b"PLTE", b"IDAT", b"IEND", b"tRNS", b"cHRM", b"gAMA", b"iCCP", b"sBIT", b"sRGB",
    b"cICP", b"mDCV", b"cLLI", b"bKGD", b"pHYs", b"acTL", b"fcTL", b"fdAT",
];

fn strip_png(b: &[u8]) -> Result<Vec<u8>, Malformed> {
    let mut out = Vec::with_capacity(b.len());
    out.extend_from_slice(PNG_SIGNATURE);
    let mut at = PNG_SIGNATURE.len();
    loop {
        let len = usize_of(be32(b, at)?)?;
        let kind = b.get(at + 4..at + 8).ok_or(Malformed)?;
        let end = at.checked_add(12 + len).ok_or(Malformed)?;
        let chunk = b.get(at..end).ok_or(Malformed)?;
        if PNG_KEEP.iter().any(|k| k.as_slice() == kind) {
            out.extend_from_slice(chunk);
        }
        if kind == b"IEND" {
            return Ok(out);
        }
        at = end;
    }
}

// --- WebP ------------------------------------------------------------------------------------

const VP8X_EXIF: u8 = 0x08;
const VP8X_XMP: u8 = 0x04;

/// Keeps the chunks that draw the picture (VP8, VP8L, ALPH, animation) and the ICC profile;
/// drops XMP and unknown chunks, and EXIF but for its orientation. VP8X's flags and the RIFF
/// size are rewritten to match.
fn strip_webp(b: &[u8]) -> Result<Vec<u8>, Malformed> {
    let riff_end = usize_of(le32(b, 4)?)?.checked_add(8).ok_or(Malformed)?;
    let body = b.get(12..riff_end.min(b.len())).ok_or(Malformed)?;
    let mut chunks: Vec<([u8; 4], Vec<u8>)> = Vec::new();
    let mut orientation = None;
    let mut at = 0;
    while at + 8 <= body.len() {
        let mut fourcc = [0u8; 4];
        fourcc.copy_from_slice(&body[at..at + 4]);
        let len = usize_of(le32(body, at + 4)?)?;
        let data = body.get(at + 8..at + 8 + len).ok_or(Malformed)?;
        match &fourcc {
            b"VP8X" | b"ICCP" | b"ANIM" | b"ANMF" | b"ALPH" | b"VP8 " | b"VP8L" => {
                chunks.push((fourcc, data.to_vec()));
            }
            b"EXIF" => {
                let tiff = data.strip_prefix(EXIF_HEADER).unwrap_or(data);
                orientation = tiff_orientation(tiff);
            }
            _ => {}
        }
        at += 8 + len + (len & 1);
    }
    let mut out = Vec::with_capacity(b.len());
    out.extend_from_slice(b"RIFF\0\0\0\0WEBP");
    for (fourcc, mut data) in chunks {
        if &fourcc == b"VP8X" {
            let flags = data.first_mut().ok_or(Malformed)?;
            *flags &= !(VP8X_EXIF | VP8X_XMP);
            if orientation.is_some() {
                *flags |= VP8X_EXIF;
            }
        }
        push_riff_chunk(&mut out, &fourcc, &data)?;
    }
    // EXIF sits after the image data; a simple (non-VP8X) file cannot carry it, so the
    // orientation is kept only where the format has a place for it.
    if let Some(o) = orientation.filter(|_| out.get(12..16) == Some(b"VP8X")) {
        push_riff_chunk(&mut out, b"EXIF", &minimal_tiff(o))?;
    }
    let size = u32::try_from(out.len() - 8).map_err(|_| Malformed)?;
    out[4..8].copy_from_slice(&size.to_le_bytes());
    Ok(out)
}

fn push_riff_chunk(out: &mut Vec<u8>, fourcc: &[u8; 4], data: &[u8]) -> Result<(), Malformed> {
    let len = u32::try_from(data.len()).map_err(|_| Malformed)?;
    out.extend_from_slice(fourcc);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(data);
    if data.len() % 2 == 1 {
        out.push(0);
    }
    Ok(())
}

#[cfg(test)]
#[path = "image_tests.rs"]
mod tests;
