//! `tollgate-bench-ceiling [port]`: answers every `POST /check` and `GET /check` with a fixed JSON body of the size
//! of an entitlement check's answer. What Tollgate's hot path is measured against, in the same run.

use actix_web::{App, HttpResponse, HttpServer, web};

const ANSWER: &str = r#"{"allowed":true,"limit":10,"used":4,"remaining":6,"percent_used":40.0,"reason":null}"#;

async fn check() -> HttpResponse {
    HttpResponse::Ok().content_type("application/json").body(ANSWER)
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let port: u16 = std::env::args().nth(1).and_then(|p| p.parse().ok()).unwrap_or(8090);
    HttpServer::new(|| App::new().route("/check", web::post().to(check)).route("/check", web::get().to(check)))
        .bind(("127.0.0.1", port))?
        .run()
        .await
}
