//! The adapter value and the calls shared by its port implementations.

use billing_domain::error::ProcessorError;
use billing_domain::events::SubscriptionSnapshot;
use billing_domain::ids::ProcessorId;
use stripe_client_core::{RequestBuilder, StripeRequest};

use crate::api::{CallError, StripeApi};
use crate::config::StripeConfig;

/// The processor id in routes (`/webhooks/stripe`), catalog prices and stored rows.
pub const PROCESSOR_ID: &str = "stripe";

/// The Stripe implementation of every part of the `PaymentProcessor` port.
pub struct StripeProcessor {
    pub(crate) api: StripeApi,
    pub(crate) config: StripeConfig,
}

impl StripeProcessor {
    /// An adapter for `config`, which the caller has validated.
    pub fn new(config: StripeConfig) -> Result<Self, ProcessorError> {
        Ok(Self { api: StripeApi::new(&config)?, config })
    }

    pub fn processor_id() -> ProcessorId {
        ProcessorId::new(PROCESSOR_ID)
    }

    /// Sends an async-stripe request, answering its body or the domain error.
    pub(crate) async fn call(
        &self,
        request: &impl StripeRequest,
        idempotency_key: Option<&str>,
    ) -> Result<Vec<u8>, ProcessorError> {
        let built = request.build();
        self.send(&built, idempotency_key).await.map_err(|e| e.into_domain(&describe(&built)))
    }

    /// Like [`Self::call`] but leaves the error classified, for callers that treat "not found" specially.
    pub(crate) async fn send(&self, request: &RequestBuilder, key: Option<&str>) -> Result<Vec<u8>, CallError> {
        let started = std::time::Instant::now();
        let result = self.api.send(request, key).await;
        let outcome = match &result {
            Ok(_) => "ok".to_owned(),
            Err(error) => error.to_string(),
        };
        tracing::debug!(call = %describe(request), elapsed_ms = started.elapsed().as_millis() as u64, %outcome, "stripe call");
        result
    }

    /// A subscription response as the snapshot the lifecycle applies.
    pub(crate) fn snapshot(body: &[u8], what: &str) -> Result<SubscriptionSnapshot, ProcessorError> {
        stripe_wire::subscription_snapshot(body)
            .map_err(|e| ProcessorError::Rejected(format!("stripe {what}: unreadable subscription ({e})")))
    }
}

/// `"POST /v1/customers"`: names a call in logs and errors without its parameters.
pub(crate) fn describe(request: &RequestBuilder) -> String {
    let method = match request.method {
        stripe_client_core::StripeMethod::Get => "GET",
        stripe_client_core::StripeMethod::Post => "POST",
        stripe_client_core::StripeMethod::Delete => "DELETE",
    };
    format!("{method} /v1{}", request.path)
}
