//! The `PaymentProcessor` port over Stripe's API.

use std::collections::HashMap;
use std::str::FromStr;

use async_trait::async_trait;
use billing_domain::catalog::PlanKind;
use billing_domain::error::ProcessorError;
use billing_domain::events::{ProcessorEvent, SubscriptionSnapshot};
use billing_domain::ids::{CheckoutSessionId, CustomerId, InvoiceId, PaymentId, PriceId, ProcessorId, SubscriptionId};
use billing_domain::money::Money;
use billing_domain::ports::{
    Capabilities, ChangePreview, CheckoutOps, CheckoutRequest, CheckoutSession, CustomerOps, InvoiceOps, InvoicePage,
    PaymentIntent, PaymentIntentRequest, PaymentOps, PortalOps, ProcessorInfo, Proration, Refund, SubscriptionOps,
    UsageReportingOps, WebhookError, WebhookHeaders, WebhookOps,
};
use billing_domain::workspace::Workspace;
use chrono::{DateTime, Utc};
use stripe_billing::billing_meter_event::CreateBillingMeterEvent;
use stripe_billing::billing_portal_session::CreateBillingPortalSession;
use stripe_billing::invoice::{
    CreatePreviewInvoice, CreatePreviewInvoiceSubscriptionDetails, CreatePreviewInvoiceSubscriptionDetailsItems,
    CreatePreviewInvoiceSubscriptionDetailsProrationBehavior, ListInvoice,
};
use stripe_billing::subscription::{
    CancelSubscription, ListSubscription, ListSubscriptionStatus, RetrieveSubscription, UpdateSubscription,
    UpdateSubscriptionItems, UpdateSubscriptionProrationBehavior,
};
use stripe_checkout::checkout_session::{
    CreateCheckoutSession, CreateCheckoutSessionAutomaticTax, CreateCheckoutSessionCustomerUpdate,
    CreateCheckoutSessionCustomerUpdateAddress, CreateCheckoutSessionCustomerUpdateName,
    CreateCheckoutSessionDiscounts, CreateCheckoutSessionLineItems, CreateCheckoutSessionPaymentIntentData,
    CreateCheckoutSessionSubscriptionData,
};
use stripe_client_core::StripeRequest;
use stripe_core::customer::{CreateCustomer, ListCustomer};
use stripe_core::payment_intent::CreatePaymentIntent;
use stripe_core::refund::{CreateRefund, RetrieveRefund};
use stripe_shared::{CheckoutSessionBillingAddressCollection, CheckoutSessionMode};
use stripe_wire::views::{InvoiceView, ListView, SubscriptionView};

use crate::api::{idempotency_key, meter_event_identifier};
use crate::processor::{StripeProcessor, describe};
use crate::responses::{self, CustomerView, PaymentIntentView, RefundView, SessionView, field, read, rejected};

/// The metadata key that ties Stripe objects to a workspace.
const WORKSPACE_KEY: &str = "workspace_id";
/// The metadata key naming the credits plan a payment intent sells (distinct from checkout's `plan_id`, so the
/// payment intent of a credits checkout never grants a second time).
const CREDITS_PLAN_KEY: &str = "credits_plan_id";

impl ProcessorInfo for StripeProcessor {
    fn id(&self) -> ProcessorId {
        StripeProcessor::processor_id()
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            checkout: true,
            portal: true,
            invoices: true,
            subscription_changes: true,
            payments: true,
            refunds: true,
            usage_reporting: true,
        }
    }
}

#[async_trait]
impl CustomerOps for StripeProcessor {
    /// The stored id wins; else a live customer listed under the owner's email whose metadata names the workspace
    /// (the list is read-after-write consistent, unlike Search); else a new one, created under a key derived from
    /// the workspace id so a retry after a timeout returns the customer the first attempt made.
    #[tracing::instrument(skip_all, fields(workspace_id = %workspace.id))]
    async fn ensure_customer(
        &self,
        workspace: &Workspace,
        known: Option<CustomerId>,
    ) -> Result<CustomerId, ProcessorError> {
        if let Some(known) = known {
            return Ok(known);
        }
        let email = workspace.owner_email.as_str();
        let listing = ListCustomer::new().email(email).limit(100);
        let page: ListView<CustomerView> = read(&self.call(&listing, None).await?, "GET /v1/customers")?;
        let ours = page
            .data
            .into_iter()
            .find(|c| !c.deleted && c.metadata.get(WORKSPACE_KEY).map(String::as_str) == Some(workspace.id.as_str()));
        if let Some(id) = ours.and_then(|c| c.id) {
            return Ok(CustomerId::new(id));
        }
        let create = CreateCustomer::new()
            .email(email)
            .name(workspace.name.clone())
            .metadata(HashMap::from([(WORKSPACE_KEY.to_owned(), workspace.id.to_string())]));
        let key = idempotency_key(&["customer", workspace.id.as_str()]);
        let created: CustomerView = read(&self.call(&create, Some(&key)).await?, "POST /v1/customers")?;
        Ok(CustomerId::new(field(created.id, "POST /v1/customers", "id")?))
    }
}

#[async_trait]
impl CheckoutOps for StripeProcessor {
    #[tracing::instrument(skip_all, fields(workspace_id = %request.workspace.id, plan_id = %request.plan.id))]
    async fn create_checkout(&self, request: &CheckoutRequest) -> Result<CheckoutSession, ProcessorError> {
        let metadata = HashMap::from([
            (WORKSPACE_KEY.to_owned(), request.workspace.id.to_string()),
            ("plan_id".to_owned(), request.plan.id.to_string()),
        ]);
        let mut line = CreateCheckoutSessionLineItems::new();
        line.price = Some(request.price_id.to_string());
        line.quantity = Some(1);
        let mut session = CreateCheckoutSession::new()
            .customer(request.customer_id.as_str())
            .client_reference_id(request.workspace.id.as_str())
            .metadata(metadata.clone())
            .line_items(vec![line])
            .success_url(request.success_url.as_str())
            .cancel_url(request.cancel_url.as_str())
            .billing_address_collection(CheckoutSessionBillingAddressCollection::Required)
            .automatic_tax(CreateCheckoutSessionAutomaticTax::new(self.config.automatic_tax));
        // Stripe takes either a discount or promotion codes typed in at checkout, never both.
        session = match &request.coupon {
            Some(coupon) => {
                let mut discount = CreateCheckoutSessionDiscounts::new();
                discount.coupon = Some(self.stripe_coupon(coupon).await?);
                session.discounts(vec![discount])
            }
            None => session.allow_promotion_codes(self.config.allow_promotion_codes),
        };
        if self.config.automatic_tax {
            // Stripe Tax needs the collected address saved on an existing customer.
            let mut update = CreateCheckoutSessionCustomerUpdate::new();
            update.address = Some(CreateCheckoutSessionCustomerUpdateAddress::Auto);
            update.name = Some(CreateCheckoutSessionCustomerUpdateName::Auto);
            session = session.customer_update(update);
        }
        session = match request.plan.kind {
            PlanKind::Subscription { .. } => {
                let mut data = CreateCheckoutSessionSubscriptionData::new();
                data.metadata = Some(metadata);
                session.mode(CheckoutSessionMode::Subscription).subscription_data(data)
            }
            PlanKind::Credits { .. } => {
                let mut data = CreateCheckoutSessionPaymentIntentData::new();
                data.metadata = Some(metadata);
                session.mode(CheckoutSessionMode::Payment).payment_intent_data(data)
            }
        };
        let key = idempotency_key(&[&request.idempotency_key]);
        let what = "POST /v1/checkout/sessions";
        let created: SessionView = read(&self.call(&session, Some(&key)).await?, what)?;
        Ok(CheckoutSession {
            id: CheckoutSessionId::new(field(created.id, what, "id")?),
            url: field(created.url, what, "url")?,
        })
    }
}

#[async_trait]
impl PortalOps for StripeProcessor {
    #[tracing::instrument(skip_all, fields(customer_id = %customer))]
    async fn create_portal(&self, customer: &CustomerId, return_url: &str) -> Result<String, ProcessorError> {
        let mut portal = CreateBillingPortalSession::new().return_url(return_url);
        portal = portal.customer(customer.as_str());
        let what = "POST /v1/billing_portal/sessions";
        // A portal session is read-only and short-lived; creating two is harmless, so no key is needed.
        let created: SessionView = read(&self.call(&portal, None).await?, what)?;
        field(created.url, what, "url")
    }
}

impl StripeProcessor {
    /// The customer of subscription `id` and its (single) item, read fresh: a price change swaps that item.
    async fn customer_and_item(&self, id: &SubscriptionId) -> Result<(String, String), ProcessorError> {
        let what = "GET /v1/subscriptions/{id}";
        let current: SubscriptionView = read(&self.call(&RetrieveSubscription::new(id.as_str()), None).await?, what)?;
        let customer = current.customer.ok_or_else(|| rejected(what, "subscription has no customer"))?.into_id();
        let item = current
            .items
            .and_then(|items| items.data.into_iter().next())
            .and_then(|item| item.id)
            .ok_or_else(|| rejected(what, "subscription has no item to change"))?;
        Ok((customer, item))
    }
}

fn proration_behavior(proration: Proration) -> UpdateSubscriptionProrationBehavior {
    match proration {
        Proration::CreateProrations => UpdateSubscriptionProrationBehavior::CreateProrations,
        Proration::AlwaysInvoice => UpdateSubscriptionProrationBehavior::AlwaysInvoice,
        Proration::None => UpdateSubscriptionProrationBehavior::None,
    }
}

#[async_trait]
impl SubscriptionOps for StripeProcessor {
    #[tracing::instrument(skip_all, fields(subscription_id = %id, at_period_end))]
    async fn cancel(
        &self,
        id: &SubscriptionId,
        at_period_end: bool,
        key: &str,
    ) -> Result<SubscriptionSnapshot, ProcessorError> {
        let key = idempotency_key(&[key]);
        let body = if at_period_end {
            self.call(&UpdateSubscription::new(id.as_str()).cancel_at_period_end(true), Some(&key)).await?
        } else {
            self.call(&CancelSubscription::new(id.as_str()), Some(&key)).await?
        };
        Self::snapshot(&body, "cancel subscription")
    }

    #[tracing::instrument(skip_all, fields(subscription_id = %id))]
    async fn resume(&self, id: &SubscriptionId, key: &str) -> Result<SubscriptionSnapshot, ProcessorError> {
        let key = idempotency_key(&[key]);
        let body = self.call(&UpdateSubscription::new(id.as_str()).cancel_at_period_end(false), Some(&key)).await?;
        Self::snapshot(&body, "resume subscription")
    }

    /// Swaps the price of the subscription's item (Tollgate sells one price per subscription).
    #[tracing::instrument(skip_all, fields(subscription_id = %id, price_id = %price))]
    async fn change_price(
        &self,
        id: &SubscriptionId,
        price: &PriceId,
        proration: Proration,
        key: &str,
    ) -> Result<SubscriptionSnapshot, ProcessorError> {
        let (_, item_id) = self.customer_and_item(id).await?;
        let mut item = UpdateSubscriptionItems::new();
        item.id = Some(item_id);
        item.price = Some(price.to_string());
        let update =
            UpdateSubscription::new(id.as_str()).items(vec![item]).proration_behavior(proration_behavior(proration));
        let key = idempotency_key(&[key]);
        Self::snapshot(&self.call(&update, Some(&key)).await?, "change subscription price")
    }

    /// `POST /v1/invoices/create_preview` for the subscription with its item on `price`, prorated as of now (the
    /// preview's default proration date):
    /// the preview's proration lines are what the change would bill.
    #[tracing::instrument(skip_all, fields(subscription_id = %id))]
    async fn preview_price_change(
        &self,
        id: &SubscriptionId,
        price: &PriceId,
        proration: Proration,
    ) -> Result<ChangePreview, ProcessorError> {
        let (customer, item_id) = self.customer_and_item(id).await?;
        let mut item = CreatePreviewInvoiceSubscriptionDetailsItems::new();
        item.id = Some(item_id);
        item.price = Some(price.to_string());
        let mut details = CreatePreviewInvoiceSubscriptionDetails::new();
        details.items = Some(vec![item]);
        details.proration_behavior = Some(match proration {
            Proration::CreateProrations => CreatePreviewInvoiceSubscriptionDetailsProrationBehavior::CreateProrations,
            Proration::AlwaysInvoice => CreatePreviewInvoiceSubscriptionDetailsProrationBehavior::AlwaysInvoice,
            Proration::None => CreatePreviewInvoiceSubscriptionDetailsProrationBehavior::None,
        });
        let preview =
            CreatePreviewInvoice::new().customer(customer).subscription(id.as_str()).subscription_details(details);
        let what = "POST /v1/invoices/create_preview";
        let body = self.call(&preview, None).await?;
        Ok(ChangePreview { prorated: responses::proration(read(&body, what)?, what)? })
    }

    #[tracing::instrument(skip_all, fields(subscription_id = %id))]
    async fn fetch(&self, id: &SubscriptionId) -> Result<SubscriptionSnapshot, ProcessorError> {
        let body = self.call(&RetrieveSubscription::new(id.as_str()), None).await?;
        Self::snapshot(&body, "GET /v1/subscriptions/{id}")
    }

    /// `GET /v1/subscriptions?customer=…&status=all`, page after page (the default listing hides canceled ones).
    #[tracing::instrument(skip_all, fields(customer_id = %customer))]
    async fn list_for_customer(&self, customer: &CustomerId) -> Result<Vec<SubscriptionSnapshot>, ProcessorError> {
        let mut found = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let mut listing =
                ListSubscription::new().customer(customer.as_str()).status(ListSubscriptionStatus::All).limit(100);
            if let Some(after) = &after {
                listing = listing.starting_after(after.clone());
            }
            let request = listing.build();
            let what = describe(&request);
            let body = match self.send(&request, None).await {
                Ok(body) => body,
                // An unknown customer answers `resource_missing`; the port promises an empty list.
                Err(error) if error.is_missing_resource() => return Ok(found),
                Err(error) => return Err(error.into_domain(&what)),
            };
            let page: ListView<serde_json::Value> = read(&body, &what)?;
            for object in &page.data {
                let raw = serde_json::to_vec(object).map_err(|_| rejected(&what, "unreadable subscription"))?;
                let snapshot = Self::snapshot(&raw, &what)?;
                after = Some(snapshot.subscription_id.to_string());
                found.push(snapshot);
            }
            if !page.has_more || page.data.is_empty() {
                return Ok(found);
            }
        }
    }
}

#[async_trait]
impl InvoiceOps for StripeProcessor {
    #[tracing::instrument(skip_all, fields(customer_id = %customer, limit))]
    async fn list_invoices(
        &self,
        customer: &CustomerId,
        limit: u32,
        starting_after: Option<InvoiceId>,
    ) -> Result<InvoicePage, ProcessorError> {
        let mut listing = ListInvoice::new().customer(customer.as_str()).limit(i64::from(limit.clamp(1, 100)));
        if let Some(after) = starting_after {
            listing = listing.starting_after(after.to_string());
        }
        let request = listing.build();
        let what = describe(&request);
        let body = match self.send(&request, None).await {
            Ok(body) => body,
            // Stripe answers an unknown customer with `resource_missing`; the port promises an empty page.
            Err(error) if error.is_missing_resource() => {
                return Ok(InvoicePage { invoices: Vec::new(), has_more: false });
            }
            Err(error) => return Err(error.into_domain(&what)),
        };
        let page: ListView<InvoiceView> = read(&body, &what)?;
        let invoices = page.data.into_iter().map(|view| responses::invoice(view, &what)).collect::<Result<_, _>>()?;
        Ok(InvoicePage { invoices, has_more: page.has_more })
    }
}

#[async_trait]
impl PaymentOps for StripeProcessor {
    /// Metadata carries the workspace and, for a credits plan, `credits_plan_id`: the paid event grants from it.
    #[tracing::instrument(skip_all, fields(workspace_id = %request.workspace_id, customer_id = %request.customer_id))]
    async fn create_payment_intent(&self, request: &PaymentIntentRequest) -> Result<PaymentIntent, ProcessorError> {
        let amount = &request.amount;
        let Ok(currency) = stripe_types::Currency::from_str(&amount.currency.as_str().to_ascii_lowercase());
        let mut metadata = HashMap::from([(WORKSPACE_KEY.to_owned(), request.workspace_id.to_string())]);
        if let Some(plan) = &request.plan_id {
            metadata.insert(CREDITS_PLAN_KEY.to_owned(), plan.to_string());
        }
        let mut create =
            CreatePaymentIntent::new(amount.minor, currency).customer(request.customer_id.as_str()).metadata(metadata);
        if let Some(description) = &request.description {
            create = create.description(description.as_str());
        }
        let key = idempotency_key(&[&request.idempotency_key]);
        let what = "POST /v1/payment_intents";
        let created: PaymentIntentView = read(&self.call(&create, Some(&key)).await?, what)?;
        Ok(PaymentIntent {
            id: PaymentId::new(field(created.id, what, "id")?),
            client_secret: field(created.client_secret, what, "client_secret")?,
            status: created.status.unwrap_or_else(|| "requires_payment_method".to_owned()),
            confirm_url: None,
        })
    }

    /// `payment` is a PaymentIntent (`pi_…`) or a Charge (`ch_…`/`py_…`).
    #[tracing::instrument(skip_all, fields(payment_id = %payment))]
    async fn refund(&self, payment: &PaymentId, amount: Option<Money>, key: &str) -> Result<Refund, ProcessorError> {
        let mut create = CreateRefund::new();
        let id = payment.as_str();
        create = if id.starts_with("pi_") { create.payment_intent(id) } else { create.charge(id) };
        if let Some(amount) = &amount {
            create = create.amount(amount.minor);
        }
        let key = idempotency_key(&[key]);
        let what = "POST /v1/refunds";
        let created: RefundView = read(&self.call(&create, Some(&key)).await?, what)?;
        responses::refund(created, what)
    }

    #[tracing::instrument(skip_all, fields(refund_id = %id))]
    async fn fetch_refund(&self, id: &str) -> Result<Refund, ProcessorError> {
        let what = "GET /v1/refunds/{id}";
        let found: RefundView = read(&self.call(&RetrieveRefund::new(id), None).await?, what)?;
        responses::refund(found, what)
    }
}

#[async_trait]
impl UsageReportingOps for StripeProcessor {
    /// A meter event named `metric`; its `identifier` (the key, bounded to 100 characters) is what Stripe
    /// deduplicates meter events on, and the same key goes in the `Idempotency-Key` header.
    #[tracing::instrument(skip_all, fields(customer_id = %customer, metric))]
    async fn report_usage(
        &self,
        customer: &CustomerId,
        metric: &str,
        quantity: rust_decimal::Decimal,
        at: DateTime<Utc>,
        key: &str,
    ) -> Result<(), ProcessorError> {
        let payload = HashMap::from([
            ("stripe_customer_id".to_owned(), customer.to_string()),
            ("value".to_owned(), quantity.normalize().to_string()),
        ]);
        let identifier = meter_event_identifier(key);
        let event =
            CreateBillingMeterEvent::new(metric, payload).identifier(identifier.as_str()).timestamp(at.timestamp());
        self.call(&event, Some(&idempotency_key(&[key]))).await.map(drop)
    }
}

impl WebhookOps for StripeProcessor {
    fn verify_and_parse(
        &self,
        headers: &WebhookHeaders,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<ProcessorEvent, WebhookError> {
        let signing = stripe_wire::Signing {
            header: "Stripe-Signature",
            secrets: &self.config.webhook_secrets,
            tolerance_secs: self.config.tolerance_secs,
        };
        stripe_wire::verify_and_parse(&self.id(), &signing, headers, body, now)
    }
}
