//! Offers: the book, creating and funding, the trade, and payouts; one OpenAPI struct per file.
//! Handlers parse, resolve the session, call one trade step (`openpleb_common::trade`) and
//! build the view; errors map to HTTP in `crate::error`.

mod book;
mod funding;
mod payouts;
mod trade;
mod views;

pub use book::BookApi;
pub use funding::FundingApi;
pub use payouts::{PayoutKeysApi, PayoutsApi};
pub use trade::TradeApi;
pub use views::{view, InvoiceView, OfferPage, OfferView, PayoutView};

use openpleb_common::trade::receipt::ReceiptFile;
use openpleb_common::trade::TradeError;
use poem_openapi::payload::Binary;
use poem_openapi::{ApiResponse, ResponseContent};

use crate::error::{ApiError, ApiResult};

/// An uploaded image (receipt or evidence) in the type it was checked to be.
#[derive(Debug, ResponseContent)]
pub enum ImageBody {
    /// PNG.
    #[oai(content_type = "image/png")]
    Png(Binary<Vec<u8>>),
    /// JPEG.
    #[oai(content_type = "image/jpeg")]
    Jpeg(Binary<Vec<u8>>),
    /// WebP.
    #[oai(content_type = "image/webp")]
    Webp(Binary<Vec<u8>>),
    /// Any other type (none is stored today; also what generic clients read as bytes).
    #[oai(content_type = "application/octet-stream")]
    Other(Binary<Vec<u8>>),
}

impl ImageBody {
    /// `bytes` stored with `content_type`.
    pub fn new(content_type: &str, bytes: Vec<u8>) -> Self {
        match content_type {
            "image/png" => Self::Png(Binary(bytes)),
            "image/jpeg" => Self::Jpeg(Binary(bytes)),
            "image/webp" => Self::Webp(Binary(bytes)),
            _ => Self::Other(Binary(bytes)),
        }
    }
}

/// A receipt image, with the taker's note in a header.
#[derive(Debug, ApiResponse)]
pub enum ReceiptImage {
    /// The receipt image.
    #[oai(status = 200)]
    Ok(ImageBody, #[oai(header = "x-receipt-note")] Option<String>),
}

/// The response for a stored receipt, or 404 when there is none yet (`receipt_not_found`) or
/// it was deleted by retention (`trade_data_deleted`).
pub fn receipt_response(receipt: Option<ReceiptFile>) -> ApiResult<ReceiptImage> {
    let ReceiptFile {
        content_type,
        image,
        note,
    } = receipt.ok_or_else(|| ApiError::not_found("receipt_not_found", "no receipt yet"))?;
    let image = image.ok_or(TradeError::TradeDataDeleted)?;
    // A header cannot carry every character; the note is plain text, so percent-escape it.
    let note = note.map(|n| {
        n.chars()
            .map(|c| {
                if c.is_ascii_graphic() || c == ' ' {
                    c.to_string()
                } else {
                    format!("%{:02X}", u32::from(c) & 0xff)
                }
            })
            .collect::<String>()
    });
    Ok(ReceiptImage::Ok(ImageBody::new(&content_type, image), note))
}
