//! Workspaces, the processor customers linked to them, and the credit ledger that proves their balance.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Workspaces::Table)
                    .if_not_exists()
                    .col(string_len(Workspaces::Id, 128).primary_key())
                    .col(string(Workspaces::Name))
                    .col(string(Workspaces::OwnerEmail))
                    .col(text(Workspaces::BillingDetails))
                    .col(timestamp_with_time_zone_null(Workspaces::TrialEndsAt))
                    .col(string_null(Workspaces::TrialPlan))
                    .col(big_integer(Workspaces::CreditBalance).default(0))
                    .col(boolean(Workspaces::Restricted).default(false))
                    .col(text_null(Workspaces::RestrictedReason))
                    .col(timestamp_with_time_zone(Workspaces::CreatedAt))
                    .col(timestamp_with_time_zone(Workspaces::UpdatedAt))
                    .to_owned(),
            )
            .await?;

        // The primary key makes a customer belong to one workspace; the unique index gives a workspace one
        // customer per processor. Together they let `link_customer` detect both conflicts without a read first.
        manager
            .create_table(
                Table::create()
                    .table(ProcessorCustomers::Table)
                    .if_not_exists()
                    .col(string_len(ProcessorCustomers::Processor, 32))
                    .col(string_len(ProcessorCustomers::CustomerId, 255))
                    .col(string_len(ProcessorCustomers::WorkspaceId, 128))
                    .col(timestamp_with_time_zone(ProcessorCustomers::CreatedAt))
                    .primary_key(Index::create().col(ProcessorCustomers::Processor).col(ProcessorCustomers::CustomerId))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_processor_customers_workspace")
                            .from(ProcessorCustomers::Table, ProcessorCustomers::WorkspaceId)
                            .to(Workspaces::Table, Workspaces::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_processor_customers_workspace")
                    .table(ProcessorCustomers::Table)
                    .col(ProcessorCustomers::Processor)
                    .col(ProcessorCustomers::WorkspaceId)
                    .unique()
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(CreditLedger::Table)
                    .if_not_exists()
                    .col(big_pk_auto(CreditLedger::Id))
                    .col(string_len(CreditLedger::WorkspaceId, 128))
                    .col(string_len(CreditLedger::LedgerKey, 255))
                    .col(big_integer(CreditLedger::Amount))
                    .col(big_integer(CreditLedger::BalanceAfter))
                    .col(timestamp_with_time_zone(CreditLedger::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_credit_ledger_workspace")
                            .from(CreditLedger::Table, CreditLedger::WorkspaceId)
                            .to(Workspaces::Table, Workspaces::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // One ledger row per key: this is what makes grants and consumptions happen once.
        manager
            .create_index(
                Index::create()
                    .name("ux_credit_ledger_key")
                    .table(CreditLedger::Table)
                    .col(CreditLedger::WorkspaceId)
                    .col(CreditLedger::LedgerKey)
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in
            [CreditLedger::Table.into_iden(), ProcessorCustomers::Table.into_iden(), Workspaces::Table.into_iden()]
        {
            manager.drop_table(Table::drop().table(table).if_exists().to_owned()).await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Workspaces {
    Table,
    Id,
    Name,
    OwnerEmail,
    BillingDetails,
    TrialEndsAt,
    TrialPlan,
    CreditBalance,
    Restricted,
    RestrictedReason,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum ProcessorCustomers {
    Table,
    Processor,
    CustomerId,
    WorkspaceId,
    CreatedAt,
}

#[derive(DeriveIden)]
enum CreditLedger {
    Table,
    Id,
    WorkspaceId,
    LedgerKey,
    Amount,
    BalanceAfter,
    CreatedAt,
}
