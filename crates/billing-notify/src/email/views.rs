//! What the templates see, formatted once: amounts in major units with their currency, dates as days.

use askama::Template;
use billing_domain::money::Money;
use billing_domain::ports::Notification;
use billing_domain::records::NotificationKind;

/// The facts of one email, as text.
pub(super) struct View {
    pub workspace: String,
    pub plan: Option<String>,
    pub amount: Option<String>,
    pub invoice_url: Option<String>,
    pub manage_url: Option<String>,
    pub date: Option<String>,
    pub attempt: Option<u32>,
    /// A dunning email's step.
    pub step: Option<String>,
}

impl View {
    pub fn of(n: &Notification) -> Self {
        Self {
            workspace: n.workspace_name.clone(),
            plan: n.facts.plan.clone(),
            amount: n.facts.amount.as_ref().map(format_money),
            invoice_url: n.facts.invoice_url.clone(),
            manage_url: n.facts.manage_url.clone(),
            date: n.facts.date.map(|d| d.format("%B %-d, %Y").to_string()),
            attempt: n.facts.attempt,
            step: n.facts.step.clone(),
        }
    }

    pub fn amount_or<'a>(&'a self, fallback: &'a str) -> &'a str {
        self.amount.as_deref().unwrap_or(fallback)
    }

    pub fn plan_or<'a>(&'a self, fallback: &'a str) -> &'a str {
        self.plan.as_deref().unwrap_or(fallback)
    }
}

/// `4900 USD` → `49.00 USD`; currencies without minor units (ISO 4217 exponent 0) print whole.
pub(super) fn format_money(money: &Money) -> String {
    const ZERO_DECIMAL: [&str; 16] = [
        "BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "UYI", "VND", "VUV", "XAF", "XOF",
    ];
    let currency = money.currency.as_str();
    if ZERO_DECIMAL.contains(&currency) {
        return format!("{} {currency}", money.minor);
    }
    let sign = if money.minor < 0 { "-" } else { "" };
    let minor = money.minor.unsigned_abs();
    format!("{sign}{}.{:02} {currency}", minor / 100, minor % 100)
}

macro_rules! kinds {
    ($($kind:ident => $text:ident($text_path:literal), $html:ident($html_path:literal);)*) => {
        $(
            #[derive(Template)]
            #[template(path = $text_path)]
            struct $text<'a> { v: &'a View }

            #[derive(Template)]
            #[template(path = $html_path)]
            struct $html<'a> { v: &'a View }
        )*

        /// The text and HTML bodies of a `kind` email.
        pub(super) fn bodies(kind: NotificationKind, v: &View) -> Result<(String, String), askama::Error> {
            match kind {
                $(NotificationKind::$kind => Ok(($text { v }.render()?, $html { v }.render()?)),)*
            }
        }
    };
}

kinds! {
    PaymentSucceeded => ReceiptText("receipt.txt"), ReceiptHtml("receipt.html");
    PaymentFailed => PaymentFailedText("payment_failed.txt"), PaymentFailedHtml("payment_failed.html");
    CancellationScheduled => CancellationText("cancellation_scheduled.txt"), CancellationHtml("cancellation_scheduled.html");
    SubscriptionEnded => EndedText("subscription_ended.txt"), EndedHtml("subscription_ended.html");
    TrialEnding => TrialText("trial_ending.txt"), TrialHtml("trial_ending.html");
    DunningStep => DunningText("dunning_step.txt"), DunningHtml("dunning_step.html");
}

impl View {
    /// The sentence a dunning email opens with, by step.
    pub fn dunning_line(&self) -> String {
        let amount = self.amount_or("an invoice");
        let workspace = &self.workspace;
        match self.step.as_deref() {
            Some("urgent") => format!("{amount} for {workspace} is still unpaid. Please pay it now to keep your plan."),
            Some("restrict") => format!(
                "{amount} for {workspace} is still unpaid, so the workspace is limited to the free plan. Paying restores everything at once."
            ),
            Some("final_warning") => format!(
                "{amount} for {workspace} is still unpaid. Unless it is paid, the subscription will be canceled."
            ),
            Some("cancel") => format!(
                "{amount} for {workspace} was never paid, so the subscription is canceled and the workspace is on the free plan."
            ),
            _ => format!("We could not collect {amount} for {workspace}. Please check your payment method."),
        }
    }
}

#[cfg(test)]
mod tests {
    use billing_domain::money::Currency;

    use super::*;

    #[test]
    fn amounts_print_in_major_units() {
        let money = |minor, currency| Money::new(minor, Currency::parse(currency).unwrap());
        assert_eq!(format_money(&money(4900, "USD")), "49.00 USD");
        assert_eq!(format_money(&money(5, "EUR")), "0.05 EUR");
        assert_eq!(format_money(&money(-1250, "USD")), "-12.50 USD");
        assert_eq!(format_money(&money(500, "JPY")), "500 JPY");
    }
}
