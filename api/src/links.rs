//! OpenAPI links between operations: how a value one response returns feeds the next call
//! (the offer created → get it, fund it, cancel it; a claim → its receipt; and so on).
//!
//! poem-openapi has no way to declare links, so they are added to the generated document
//! here, from one table per listener. Generated clients use them to follow a trade, and
//! schemathesis's stateful phase (`scripts/contract`) walks them as multi-step sequences. A
//! link names its target by `operationId`; a test checks that every source and target exists
//! and that every path parameter of a target is given.

use serde_yaml::{Mapping, Value};

/// One link: after `source` answers `status`, call `target` with `parameters` (name →
/// runtime expression, e.g. `$response.body#/offer/id` or `$request.path.id`) and, when
/// `body` is not empty, a request body with those fields (the rest is the caller's).
#[derive(Debug, Clone, Copy)]
pub struct Link {
    pub source: &'static str,
    pub status: &'static str,
    pub name: &'static str,
    pub target: &'static str,
    pub parameters: &'static [(&'static str, &'static str)],
    pub body: &'static [(&'static str, &'static str)],
    pub description: &'static str,
}

const fn link(
    source: &'static str,
    status: &'static str,
    name: &'static str,
    target: &'static str,
    parameters: &'static [(&'static str, &'static str)],
    description: &'static str,
) -> Link {
    Link {
        source,
        status,
        name,
        target,
        parameters,
        body: &[],
        description,
    }
}

const CREATED_ID: &[(&str, &str)] = &[("id", "$response.body#/offer/id")];
const SAME_OFFER: &[(&str, &str)] = &[("id", "$request.path.id")];
const FIRST_ITEM: &[(&str, &str)] = &[("id", "$response.body#/items/0/id")];

/// The public listener's links: a trade from the maker's and the taker's side.
pub const PUBLIC: &[Link] = &[
    Link {
        body: &[("fiatProviderId", "$response.body#/0/id")],
        ..link(
            "listFiatProviders",
            "200",
            "CreateOffer",
            "createOffer",
            &[],
            "Create an offer paid through a listed provider.",
        )
    },
    link(
        "createOffer",
        "201",
        "GetOffer",
        "getOffer",
        CREATED_ID,
        "The offer just created.",
    ),
    link(
        "createOffer",
        "201",
        "FundOffer",
        "fundOffer",
        CREATED_ID,
        "Pay its deposit with a Cashu token instead of the invoice.",
    ),
    link(
        "createOffer",
        "201",
        "CancelOffer",
        "cancelOffer",
        CREATED_ID,
        "Cancel it (before a claim is won).",
    ),
    link(
        "createOffer",
        "201",
        "GetPayouts",
        "getPayouts",
        CREATED_ID,
        "The maker's payouts, once the trade ends.",
    ),
    link(
        "createOffer",
        "201",
        "SetPush",
        "setPush",
        CREATED_ID,
        "Be told of its moves by Web Push.",
    ),
    link(
        "createOffer",
        "201",
        "SetWebhook",
        "setWebhook",
        CREATED_ID,
        "Be told of its moves by a webhook.",
    ),
    link(
        "createOffer",
        "201",
        "GetOfferReputation",
        "getOfferReputation",
        CREATED_ID,
        "The reputation token this offer earns its maker.",
    ),
    link(
        "listOffers",
        "200",
        "GetOffer",
        "getOffer",
        FIRST_ITEM,
        "An offer of the book.",
    ),
    link(
        "listOffers",
        "200",
        "ClaimOffer",
        "claimOffer",
        FIRST_ITEM,
        "Claim an offer of the book (another session than its maker's).",
    ),
    link(
        "getOffer",
        "200",
        "CancelOffer",
        "cancelOffer",
        SAME_OFFER,
        "Cancel the offer.",
    ),
    link(
        "fundOffer",
        "202",
        "GetFundIntent",
        "getFundIntent",
        &[
            ("id", "$request.path.id"),
            ("intent_id", "$response.body#/id"),
        ],
        "Where the funding token is.",
    ),
    link(
        "claimOffer",
        "200",
        "GetClaim",
        "getClaim",
        SAME_OFFER,
        "The claim's state: pending until its bond is paid.",
    ),
    link(
        "claimOffer",
        "200",
        "SubmitReceipt",
        "submitReceipt",
        SAME_OFFER,
        "Upload the payment's receipt once the bond is paid.",
    ),
    link(
        "claimOffer",
        "200",
        "ReportPaymentDetails",
        "reportPaymentDetails",
        SAME_OFFER,
        "The taker says the payment details are wrong.",
    ),
    link(
        "claimOffer",
        "200",
        "SetPushOnClaim",
        "setPush",
        SAME_OFFER,
        "The taker is told of the offer's moves by Web Push.",
    ),
    link(
        "submitReceipt",
        "200",
        "GetReceipt",
        "getReceipt",
        SAME_OFFER,
        "The receipt uploaded.",
    ),
    link(
        "submitReceipt",
        "200",
        "CompleteOffer",
        "completeOffer",
        SAME_OFFER,
        "The maker confirms the payment arrived.",
    ),
    link(
        "submitReceipt",
        "200",
        "MarkIssue",
        "markIssue",
        SAME_OFFER,
        "The maker says the payment did not arrive.",
    ),
    link(
        "markIssue",
        "200",
        "AnswerIssue",
        "answerIssue",
        SAME_OFFER,
        "The taker answers the issue.",
    ),
    link(
        "markIssue",
        "200",
        "GetDispute",
        "getDispute",
        SAME_OFFER,
        "The dispute's file.",
    ),
    link(
        "answerIssue",
        "200",
        "AnswerDispute",
        "answerDispute",
        SAME_OFFER,
        "The maker answers the taker's dispute.",
    ),
    link(
        "reportPaymentDetails",
        "200",
        "GetDisputeOfDetails",
        "getDispute",
        SAME_OFFER,
        "The dispute's file.",
    ),
    link(
        "getDispute",
        "200",
        "AddEvidence",
        "addEvidence",
        SAME_OFFER,
        "Add evidence to the dispute.",
    ),
    link(
        "addEvidence",
        "201",
        "GetEvidence",
        "getEvidence",
        &[
            ("id", "$request.path.id"),
            ("evidence_id", "$response.body#/id"),
        ],
        "The evidence just added.",
    ),
];

/// The admin listener's links.
pub const ADMIN: &[Link] = &[
    link(
        "createInviteCode",
        "201",
        "RevokeInviteCode",
        "revokeInviteCode",
        &[("code", "$response.body#/code")],
        "Revoke the code just made.",
    ),
    link(
        "createFiatProvider",
        "201",
        "UpdateFiatProvider",
        "updateFiatProvider",
        &[("id", "$response.body#/id")],
        "Change the provider just made.",
    ),
    link(
        "createFiatProvider",
        "201",
        "DeleteFiatProvider",
        "deleteFiatProvider",
        &[("id", "$response.body#/id")],
        "Delete the provider just made.",
    ),
    link(
        "listAllFiatProviders",
        "200",
        "UpdateListedProvider",
        "updateFiatProvider",
        &[("id", "$response.body#/0/id")],
        "Change a listed provider.",
    ),
    link(
        "adminListOffers",
        "200",
        "AdminGetOffer",
        "adminGetOffer",
        FIRST_ITEM,
        "An offer of the list.",
    ),
    link(
        "adminListOffers",
        "200",
        "AdminGetReceipt",
        "adminGetReceipt",
        FIRST_ITEM,
        "The receipt of an offer of the list.",
    ),
    link(
        "adminListDisputes",
        "200",
        "AdminGetDispute",
        "adminGetDispute",
        &[("id", "$response.body#/items/0/offerId")],
        "A dispute's file.",
    ),
    link(
        "adminGetDispute",
        "200",
        "AdminResolveDispute",
        "adminResolveDispute",
        SAME_OFFER,
        "Resolve the dispute.",
    ),
    link(
        "adminGetDispute",
        "200",
        "AdminGetEvidence",
        "adminGetEvidence",
        &[
            ("id", "$request.path.id"),
            ("evidence_id", "$response.body#/dispute/evidence/0/id"),
        ],
        "An evidence image of the dispute.",
    ),
    link(
        "adminListUsers",
        "200",
        "SetUserStatus",
        "setUserStatus",
        FIRST_ITEM,
        "Activate or deactivate a listed user.",
    ),
    link(
        "adminTreasuryWithdraw",
        "202",
        "AdminTreasuryWithdrawal",
        "adminTreasuryWithdrawal",
        &[("id", "$response.body#/id")],
        "Where the withdrawal is.",
    ),
];

/// `yaml` (a document poem-openapi generated) with `links` added to the responses `links`
/// names. A link whose source operation or status is not in the document is left out, so the
/// table cannot add a response the server does not give (the table's test catches it).
pub fn with_links(yaml: &str, links: &[Link]) -> String {
    let Ok(mut doc) = serde_yaml::from_str::<Value>(yaml) else {
        return yaml.to_owned();
    };
    for l in links {
        let Some(response) = response_mut(&mut doc, l.source, l.status) else {
            continue;
        };
        let Some(response) = response.as_mapping_mut() else {
            continue;
        };
        let entry = response
            .entry(Value::from("links"))
            .or_insert_with(|| Value::Mapping(Mapping::new()));
        if let Some(map) = entry.as_mapping_mut() {
            map.insert(Value::from(l.name), link_object(l));
        }
    }
    serde_yaml::to_string(&doc).unwrap_or_else(|_| yaml.to_owned())
}

fn link_object(l: &Link) -> Value {
    let mut parameters = Mapping::new();
    for (name, expr) in l.parameters {
        parameters.insert(Value::from(*name), Value::from(*expr));
    }
    let mut object = Mapping::new();
    object.insert(Value::from("operationId"), Value::from(l.target));
    object.insert(Value::from("parameters"), Value::Mapping(parameters));
    if !l.body.is_empty() {
        let mut body = Mapping::new();
        for (name, expr) in l.body {
            body.insert(Value::from(*name), Value::from(*expr));
        }
        object.insert(Value::from("requestBody"), Value::Mapping(body));
    }
    object.insert(Value::from("description"), Value::from(l.description));
    Value::Mapping(object)
}

/// The response object of operation `operation_id` for `status`, wherever its path is.
fn response_mut<'a>(doc: &'a mut Value, operation_id: &str, status: &str) -> Option<&'a mut Value> {
    let paths = doc.get_mut("paths")?.as_mapping_mut()?;
    for (_, item) in paths.iter_mut() {
        let Some(item) = item.as_mapping_mut() else {
            continue;
        };
        for (_, operation) in item.iter_mut() {
            if operation.get("operationId").and_then(Value::as_str) == Some(operation_id) {
                return operation.get_mut("responses")?.get_mut(status);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every link's source answers its status, its target exists and gets every path
    /// parameter it needs, and no two links of one response share a name.
    fn check(yaml: &str, links: &[Link]) {
        let doc: Value = serde_yaml::from_str(yaml).expect("yaml");
        let mut operations = std::collections::HashMap::new();
        for (path, item) in doc["paths"].as_mapping().expect("paths") {
            for (_, op) in item.as_mapping().expect("item") {
                let id = op["operationId"].as_str().expect("operationId").to_owned();
                operations.insert(id, (path.as_str().expect("path").to_owned(), op.clone()));
            }
        }
        let mut names = std::collections::HashSet::new();
        for l in links {
            let (_, source) = operations
                .get(l.source)
                .unwrap_or_else(|| panic!("{}", l.source));
            assert!(
                source["responses"].get(l.status).is_some(),
                "{} does not answer {}",
                l.source,
                l.status
            );
            let (path, _) = operations
                .get(l.target)
                .unwrap_or_else(|| panic!("{}", l.target));
            for segment in path.split('/').filter(|s| s.starts_with('{')) {
                let name = segment.trim_matches(|c| c == '{' || c == '}');
                assert!(
                    l.parameters.iter().any(|(p, _)| *p == name),
                    "{} → {} lacks {name}",
                    l.source,
                    l.target
                );
            }
            assert!(
                names.insert((l.source, l.status, l.name)),
                "{} twice",
                l.name
            );
        }
    }

    #[test]
    fn public_links_name_real_operations() {
        check(&crate::public_service("/api/v1").spec_yaml(), PUBLIC);
    }

    #[test]
    fn admin_links_name_real_operations() {
        check(&crate::admin_service("/api/v1").spec_yaml(), ADMIN);
    }

    #[test]
    fn links_land_in_the_document() {
        let yaml = crate::openapi_yaml();
        let doc: Value = serde_yaml::from_str(&yaml).expect("yaml");
        let created = &doc["paths"]["/offers"]["post"]["responses"]["201"]["links"];
        assert_eq!(created["GetOffer"]["operationId"], "getOffer");
        assert_eq!(
            created["GetOffer"]["parameters"]["id"],
            "$response.body#/offer/id"
        );
        let count = |y: &str| y.matches("operationId: ").count();
        assert_eq!(
            count(&yaml) - count(&crate::public_service("/api/v1").spec_yaml()),
            PUBLIC.len()
        );
    }
}
