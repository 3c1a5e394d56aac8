//! The page's templates (askama, checked at compile time; `templates/billing_page/`) and its stylesheet. HTML is
//! escaped by askama; the charts are SVG built and escaped in `chart.rs`.

use askama::Template;

use super::view::PageView;

/// The stylesheet, before the accent is filled in (`BillingPage::new`).
pub(crate) const STYLESHEET: &str = include_str!("../../templates/billing_page/page.css");

#[derive(Template)]
#[template(path = "billing_page/page.html")]
pub(crate) struct Page<'a> {
    pub lang: &'a str,
    pub v: &'a PageView,
}

/// A page in place of the billing page: a link used or expired, a session ended, a refused form.
#[derive(Template)]
#[template(path = "billing_page/closed.html")]
pub(crate) struct Closed<'a> {
    pub lang: &'a str,
    pub heading: &'a str,
    pub message: &'a str,
    pub back: Option<&'a str>,
    pub back_label: &'a str,
}
