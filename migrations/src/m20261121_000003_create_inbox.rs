//! The webhook inbox (one row per processor event) and the events parked until the link they need appears.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(InboxEvents::Table)
                    .if_not_exists()
                    .col(big_pk_auto(InboxEvents::Id))
                    .col(string_len(InboxEvents::Processor, 32))
                    .col(string_len(InboxEvents::EventId, 255))
                    .col(string(InboxEvents::EventType))
                    .col(text(InboxEvents::Payload))
                    .col(string_len(InboxEvents::Status, 32))
                    .col(integer(InboxEvents::Attempts).default(0))
                    .col(text_null(InboxEvents::Error))
                    .col(timestamp_with_time_zone(InboxEvents::ReceivedAt))
                    .col(timestamp_with_time_zone_null(InboxEvents::ProcessedAt))
                    .to_owned(),
            )
            .await?;
        // The unique key that makes concurrent deliveries of one event record it exactly once.
        manager
            .create_index(
                Index::create()
                    .name("ux_inbox_events_event")
                    .table(InboxEvents::Table)
                    .col(InboxEvents::Processor)
                    .col(InboxEvents::EventId)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_inbox_events_status")
                    .table(InboxEvents::Table)
                    .col(InboxEvents::Status)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(ParkedEvents::Table)
                    .if_not_exists()
                    .col(big_pk_auto(ParkedEvents::Id))
                    .col(string_len(ParkedEvents::Processor, 32))
                    .col(string_len(ParkedEvents::EventId, 255))
                    .col(string_len(ParkedEvents::Link, 255))
                    .col(text(ParkedEvents::Event))
                    .col(timestamp_with_time_zone(ParkedEvents::ParkedAt))
                    .to_owned(),
            )
            .await?;
        // Parking the same event under the same link twice (a redelivery) keeps one row.
        manager
            .create_index(
                Index::create()
                    .name("ux_parked_events_event_link")
                    .table(ParkedEvents::Table)
                    .col(ParkedEvents::Processor)
                    .col(ParkedEvents::EventId)
                    .col(ParkedEvents::Link)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_parked_events_link")
                    .table(ParkedEvents::Table)
                    .col(ParkedEvents::Processor)
                    .col(ParkedEvents::Link)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [ParkedEvents::Table.into_iden(), InboxEvents::Table.into_iden()] {
            manager.drop_table(Table::drop().table(table).if_exists().to_owned()).await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum InboxEvents {
    Table,
    Id,
    Processor,
    EventId,
    EventType,
    Payload,
    Status,
    Attempts,
    Error,
    ReceivedAt,
    ProcessedAt,
}

#[derive(DeriveIden)]
enum ParkedEvents {
    Table,
    Id,
    Processor,
    EventId,
    Link,
    Event,
    ParkedAt,
}
