//! Stripping on files built here segment by segment, with the metadata a phone writes.

use super::*;

fn segment(marker: u8, payload: &[u8]) -> Vec<u8> {
    let mut s = vec![0xff, marker];
    s.extend_from_slice(&u16::try_from(payload.len() + 2).expect("len").to_be_bytes());
    s.extend_from_slice(payload);
    s
}

/// A little-endian TIFF with Make, Model, DateTime, Orientation and a GPS IFD pointer, as a
/// phone writes it (the values sit after the IFD).
fn phone_tiff(orientation: u16) -> Vec<u8> {
    let mut t = b"II\x2a\0\x08\0\0\0".to_vec();
    let entries: [(u16, u16, u32, u32); 5] = [
        (0x010f, 2, 6, 86),                     // Make → "Canon\0" at 86
        (0x0110, 2, 8, 92),                     // Model → "EOS R5X\0" at 92
        (0x0112, 3, 1, u32::from(orientation)), // Orientation, in place
        (0x0132, 2, 20, 100),                   // DateTime at 100
        (0x8825, 4, 1, 120),                    // GPS IFD at 120
    ];
    t.extend_from_slice(&5u16.to_le_bytes());
    for (tag, kind, count, value) in entries {
        t.extend_from_slice(&tag.to_le_bytes());
        t.extend_from_slice(&kind.to_le_bytes());
        t.extend_from_slice(&count.to_le_bytes());
        t.extend_from_slice(&value.to_le_bytes());
    }
    t.extend_from_slice(&0u32.to_le_bytes());
    assert_eq!(t.len(), 8 + 2 + 60 + 4);
    t.resize(86, 0);
    t.extend_from_slice(b"Canon\0");
    t.extend_from_slice(b"EOS R5X\0");
    t.extend_from_slice(b"2026:12:07 10:11:12\0");
    // GPS IFD: one entry, GPSLatitudeRef "N".
    t.extend_from_slice(&1u16.to_le_bytes());
    t.extend_from_slice(&[0x01, 0x00, 0x02, 0x00, 0x02, 0, 0, 0, b'N', 0, 0, 0]);
    t.extend_from_slice(&0u32.to_le_bytes());
    t.extend_from_slice(b"GPS 52.5200 13.4050");
    t
}

const SCAN: &[u8] = &[0x12, 0xff, 0x00, 0x34, 0xff, 0xd0, 0x56, 0x78];

fn phone_jpeg() -> Vec<u8> {
    let mut j = vec![0xff, 0xd8];
    let mut jfif = b"JFIF\0\x01\x02\x01\0\x48\0\x48".to_vec();
    jfif.extend_from_slice(&[1, 1, 0xaa, 0xbb, 0xcc]); // a 1×1 thumbnail
    j.extend(segment(0xe0, &jfif));
    let mut exif = EXIF_HEADER.to_vec();
    exif.extend(phone_tiff(6));
    j.extend(segment(0xe1, &exif));
    j.extend(segment(
        0xe1,
        b"http://ns.adobe.com/xap/1.0/\0<x:xmpmeta>Berlin</x:xmpmeta>",
    ));
    j.extend(segment(0xe2, b"ICC_PROFILE\0\x01\x01sRGB-profile"));
    j.extend(segment(0xe2, b"MPF\0second picture"));
    j.extend(segment(0xed, b"Photoshop 3.0\0IPTC by-line Alice"));
    j.extend(segment(0xee, b"Adobe\0\x64\0\0\0\0\x01"));
    j.extend(segment(0xfe, b"shot at Alexanderplatz"));
    j.extend(segment(0xdb, &[0u8; 65]));
    j.extend(segment(0xc0, &[8, 0, 1, 0, 1, 1, 1, 0x11, 0]));
    j.extend(segment(0xc4, &[0u8; 20]));
    j.extend(segment(0xda, &[1, 1, 0, 0, 63, 0]));
    j.extend_from_slice(SCAN);
    j.extend_from_slice(&[0xff, 0xd9]);
    j.extend_from_slice(b"trailer: serial 1234");
    j
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

const PRIVATE: &[&[u8]] = &[
    b"Canon",
    b"EOS R5X",
    b"2026:12:07",
    b"GPS",
    b"Berlin",
    b"Alice",
    b"Alexanderplatz",
    b"serial",
    b"second picture",
    &[0xaa, 0xbb, 0xcc],
];

#[test]
fn kinds_are_known_by_their_magic_numbers() {
    assert_eq!(sniff(b"\x89PNG\r\n\x1a\nrest"), Some(ImageKind::Png));
    assert_eq!(sniff(&[0xff, 0xd8, 0xff, 0xe0]), Some(ImageKind::Jpeg));
    assert_eq!(sniff(b"RIFF\x10\0\0\0WEBPVP8 "), Some(ImageKind::Webp));
    assert_eq!(sniff(b"GIF89a"), None);
}

#[test]
fn jpeg_loses_its_metadata_and_keeps_picture_colour_and_orientation() {
    let original = phone_jpeg();
    let stripped = strip_metadata(ImageKind::Jpeg, &original).expect("strip");
    for p in PRIVATE {
        assert!(contains(&original, p), "the test file lacks {p:?}");
        assert!(
            !contains(&stripped, p),
            "{:?} survived",
            String::from_utf8_lossy(p)
        );
    }
    // The picture: tables, frame and the scan with its stuffed byte and restart marker.
    assert!(contains(&stripped, &segment(0xdb, &[0u8; 65])));
    assert!(contains(
        &stripped,
        &segment(0xc0, &[8, 0, 1, 0, 1, 1, 1, 0x11, 0])
    ));
    let mut scan = segment(0xda, &[1, 1, 0, 0, 63, 0]);
    scan.extend_from_slice(SCAN);
    scan.extend_from_slice(&[0xff, 0xd9]);
    assert!(stripped.ends_with(&scan));
    // Colour: the ICC profile and Adobe's transform.
    assert!(contains(&stripped, b"ICC_PROFILE\0\x01\x01sRGB-profile"));
    assert!(contains(&stripped, b"Adobe\0\x64"));
    // JFIF stays, without its thumbnail; EXIF holds the orientation and nothing else.
    assert!(contains(
        &stripped,
        &segment(0xe0, b"JFIF\0\x01\x02\x01\0\x48\0\x48\0\0")
    ));
    let mut exif = EXIF_HEADER.to_vec();
    exif.extend(minimal_tiff(6));
    assert!(contains(&stripped, &segment(0xe1, &exif)));
    assert_eq!(tiff_orientation(&minimal_tiff(6)), Some(6));
    // Stripping is idempotent.
    assert_eq!(strip_metadata(ImageKind::Jpeg, &stripped), Ok(stripped));
}

#[test]
fn an_upright_photo_keeps_no_exif_at_all() {
    let mut j = vec![0xff, 0xd8];
    let mut exif = EXIF_HEADER.to_vec();
    exif.extend(phone_tiff(1));
    j.extend(segment(0xe1, &exif));
    j.extend(segment(0xda, &[1, 1, 0, 0, 63, 0]));
    j.extend_from_slice(SCAN);
    j.extend_from_slice(&[0xff, 0xd9]);
    let stripped = strip_metadata(ImageKind::Jpeg, &j).expect("strip");
    assert!(!contains(&stripped, b"Exif"));
}

fn chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut c = u32::try_from(data.len())
        .expect("len")
        .to_be_bytes()
        .to_vec();
    c.extend_from_slice(kind);
    c.extend_from_slice(data);
    // Stripping copies or drops whole chunks and never reads their CRCs.
    c.extend_from_slice(&[0; 4]);
    c
}

#[test]
fn png_loses_its_text_time_and_exif_chunks() {
    let ihdr = chunk(b"IHDR", &[0, 0, 0, 1, 0, 0, 0, 1, 8, 6, 0, 0, 0]);
    let idat = chunk(b"IDAT", &[0x78, 0x9c, 0x63, 0, 1, 0, 0, 5, 0, 1]);
    let iccp = chunk(b"iCCP", b"sRGB\0\0compressed");
    let mut png = PNG_SIGNATURE.to_vec();
    png.extend(&ihdr);
    png.extend(chunk(b"tEXt", b"Author\0Alice"));
    png.extend(chunk(b"iTXt", b"XML:com.adobe.xmp\0\0\0\0\0<x>Berlin</x>"));
    png.extend(chunk(b"zTXt", b"Comment\0\0Alexanderplatz"));
    png.extend(chunk(b"tIME", &[7, 234, 12, 7, 10, 11, 12]));
    png.extend(chunk(b"eXIf", &phone_tiff(6)));
    png.extend(&iccp);
    png.extend(&idat);
    png.extend(chunk(b"IEND", &[]));
    png.extend_from_slice(b"serial");
    let stripped = strip_metadata(ImageKind::Png, &png).expect("strip");
    let mut want = PNG_SIGNATURE.to_vec();
    want.extend(ihdr);
    want.extend(iccp);
    want.extend(idat);
    want.extend(chunk(b"IEND", &[]));
    assert_eq!(stripped, want);
}

fn riff(chunks: &[(&[u8; 4], Vec<u8>)]) -> Vec<u8> {
    let mut body = b"WEBP".to_vec();
    for (fourcc, data) in chunks {
        push_riff_chunk(&mut body, fourcc, data).expect("chunk");
    }
    let mut w = b"RIFF".to_vec();
    w.extend_from_slice(&u32::try_from(body.len()).expect("len").to_le_bytes());
    w.extend(body);
    w
}

#[test]
fn webp_loses_xmp_and_exif_but_its_orientation() {
    let vp8l = b"\x2f\0\0\0\0\x10\x07\x10\x11\x11".to_vec();
    let flags = 0x20 | VP8X_EXIF | VP8X_XMP;
    let vp8x = vec![flags, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    let original = riff(&[
        (b"VP8X", vp8x),
        (b"ICCP", b"sRGB-profile".to_vec()),
        (b"VP8L", vp8l.clone()),
        (b"EXIF", phone_tiff(6)),
        (b"XMP ", b"<x:xmpmeta>Berlin</x:xmpmeta>".to_vec()),
    ]);
    let stripped = strip_metadata(ImageKind::Webp, &original).expect("strip");
    let want = riff(&[
        (b"VP8X", vec![0x20 | VP8X_EXIF, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
        (b"ICCP", b"sRGB-profile".to_vec()),
        (b"VP8L", vp8l.clone()),
        (b"EXIF", minimal_tiff(6)),
    ]);
    assert_eq!(stripped, want);
    // A simple file keeps its one chunk.
    let simple = riff(&[(b"VP8L", vp8l.clone()), (b"XMP ", b"Berlin".to_vec())]);
    assert_eq!(
        strip_metadata(ImageKind::Webp, &simple),
        Ok(riff(&[(b"VP8L", vp8l)]))
    );
}

#[test]
fn truncated_files_are_malformed_not_a_panic() {
    let jpeg = {
        let j = phone_jpeg();
        j[..j.len() - b"trailer: serial 1234".len()].to_vec()
    };
    let png = {
        let mut p = PNG_SIGNATURE.to_vec();
        p.extend(chunk(b"IHDR", &[0; 13]));
        p.extend(chunk(b"IEND", &[]));
        p
    };
    let webp = riff(&[(b"VP8L", vec![0; 9])]);
    for (kind, file) in [
        (ImageKind::Jpeg, jpeg),
        (ImageKind::Png, png),
        (ImageKind::Webp, webp),
    ] {
        assert!(strip_metadata(kind, &file).is_ok());
        for cut in 1..file.len() - 1 {
            // Cut WebP files may still parse (the RIFF size is only an upper bound); none panics.
            let r = strip_metadata(kind, &file[..cut]);
            if kind != ImageKind::Webp {
                assert_eq!(r, Err(Malformed), "{kind:?} cut at {cut}");
            }
        }
    }
}
