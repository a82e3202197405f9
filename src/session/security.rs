//! Roles and privileges at the statement level: CREATE/ALTER/DROP ROLE,
//! GRANT/REVOKE, ALTER TABLE ... OWNER TO, and the check that the current
//! role may run a statement before it runs.

use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::{
    Action, AlterRoleOperation, CopySource, CopyTarget, CreateRole, FromTable, Grant, GrantObjects,
    Grantee, GranteeName, GranteesType, ObjectName, ObjectType, OnConflict, OnConflictAction,
    OnInsert, Password, Privileges, Revoke, RoleOption, Statement, TableFactor, TableObject,
};

use super::classify::{classify, Privilege};
use super::{object_name_parts, unsupported, Session, StatementResult};
use crate::engine::roles::{
    self, password_verifier, AclObject, Actor, Role, CREATE, DELETE, INSERT, PUBLIC, SELECT,
    TRUNCATE, UPDATE, USAGE,
};
use crate::engine::{CatalogState, QualifiedName};
use crate::error::{not_supported, QuiverError, Result};
use crate::sql::catalog::{INFORMATION_SCHEMA, PG_CATALOG};

fn denied(message: String) -> QuiverError {
    QuiverError::InsufficientPrivilege(message)
}

impl Session {
    /// The role the session acts as.
    pub fn current_role(&self) -> String {
        self.info.identity().user
    }

    fn require_superuser(&self, what: &str) -> Result<()> {
        let identity = self.info.identity();
        if self.catalog().is_superuser(identity.actor()) {
            Ok(())
        } else {
            Err(denied(format!("permission denied to {what}")))
        }
    }

    /// CREATE ROLE / CREATE USER (`login` is the default of LOGIN).
    pub(super) async fn create_role(
        &mut self,
        create: &CreateRole,
        login: bool,
    ) -> Result<StatementResult> {
        self.require_superuser("create role")?;
        refuse_role_options(
            create.create_db == Some(true),
            create.create_role == Some(true),
            create.connection_limit.is_some() || create.valid_until.is_some(),
        )?;
        if !create.in_role.is_empty() || !create.role.is_empty() || !create.admin.is_empty() {
            return Err(not_supported("role membership (IN ROLE, ROLE, ADMIN)"));
        }
        for name in &create.names {
            let name = role_name(name)?;
            let mut role = Role {
                name: name.clone(),
                superuser: create.superuser.unwrap_or(false),
                login: create.login.unwrap_or(login),
                password: None,
                replication: create.replication.unwrap_or(false),
            };
            if let Some(password) = &create.password {
                role.password = password_of(password)?;
            }
            if create.if_not_exists && self.catalog().roles.contains_key(&name) {
                continue;
            }
            self.check_first_password(&role)?;
            let (_, ack) = self
                .db
                .put_role(self.current_txn().as_deref(), role, true)?;
            ack.wait().await;
        }
        Ok(StatementResult::command("CREATE ROLE"))
    }

    /// The first password turns authentication on for every login; it
    /// must belong to a superuser that can log in, or nobody could
    /// administer the database afterwards.
    fn check_first_password(&self, role: &Role) -> Result<()> {
        let catalog = self.catalog();
        let others_have = catalog
            .roles
            .values()
            .any(|r| r.name != role.name && r.password.is_some());
        if role.password.is_some() && !others_have && !(role.superuser && role.login) {
            return Err(QuiverError::InvalidParameterValue(format!(
                "role \"{}\" would be the first role with a password, which makes every login need one; \
                 create a superuser with a password first (CREATE USER admin SUPERUSER PASSWORD '...')",
                role.name
            )));
        }
        Ok(())
    }

    pub(super) async fn alter_role(
        &mut self,
        name: &datafusion::sql::sqlparser::ast::Ident,
        operation: &AlterRoleOperation,
    ) -> Result<StatementResult> {
        let name = name.value.clone();
        let catalog = self.catalog();
        let Some(mut role) = catalog.roles.get(&name).cloned() else {
            return Err(QuiverError::UndefinedRole(name));
        };
        let AlterRoleOperation::WithOptions { options } = operation else {
            return Err(not_supported(format!("ALTER ROLE {operation}")));
        };
        let own_password_only = name == self.current_role()
            && options.iter().all(|o| matches!(o, RoleOption::Password(_)));
        if !own_password_only {
            self.require_superuser("alter role")?;
        }
        for option in options {
            match option {
                RoleOption::Password(p) => role.password = password_of(p)?,
                RoleOption::SuperUser(on) => role.superuser = *on,
                RoleOption::Login(on) => role.login = *on,
                RoleOption::Replication(on) => role.replication = *on,
                RoleOption::Inherit(_) => {}
                RoleOption::CreateDB(on) => refuse_role_options(*on, false, false)?,
                RoleOption::CreateRole(on) => refuse_role_options(false, *on, false)?,
                other => return Err(not_supported(format!("the role option {other}"))),
            }
        }
        self.check_first_password(&role)?;
        let (_, ack) = self
            .db
            .put_role(self.current_txn().as_deref(), role, false)?;
        ack.wait().await;
        Ok(StatementResult::command("ALTER ROLE"))
    }

    pub(super) async fn drop_roles(
        &mut self,
        names: &[ObjectName],
        if_exists: bool,
    ) -> Result<StatementResult> {
        self.require_superuser("drop role")?;
        for name in names {
            let name = role_name(name)?;
            if name == self.current_role() {
                return Err(QuiverError::InvalidStatement(
                    "current user cannot be dropped".into(),
                ));
            }
            let (_, ack) = self
                .db
                .drop_role(self.current_txn().as_deref(), &name, if_exists)?;
            ack.wait().await;
        }
        Ok(StatementResult::command("DROP ROLE"))
    }

    pub(super) async fn grant(&mut self, grant: &Grant) -> Result<StatementResult> {
        self.grant_or_revoke(
            &grant.privileges,
            grant.objects.as_ref(),
            &grant.grantees,
            true,
            grant.with_grant_option,
        )
        .await
    }

    pub(super) async fn revoke(&mut self, revoke: &Revoke) -> Result<StatementResult> {
        self.grant_or_revoke(
            &revoke.privileges,
            revoke.objects.as_ref(),
            &revoke.grantees,
            false,
            false,
        )
        .await
    }

    /// GRANT (`grant`) or REVOKE privileges on tables or schemas.
    pub(super) async fn grant_or_revoke(
        &mut self,
        privileges: &Privileges,
        objects: Option<&GrantObjects>,
        grantees: &[Grantee],
        grant: bool,
        with_grant_option: bool,
    ) -> Result<StatementResult> {
        if with_grant_option {
            return Err(not_supported(
                "WITH GRANT OPTION (owners and superusers grant)",
            ));
        }
        let catalog = self.catalog();
        let identity = self.info.identity();
        let objects = match objects {
            Some(objects) => self.grant_objects(objects, &catalog)?,
            None => return Err(not_supported("GRANT of role membership")),
        };
        let grantees = grantees
            .iter()
            .map(|g| grantee_name(g, &catalog))
            .collect::<Result<Vec<_>>>()?;
        let mut acls = Vec::with_capacity(objects.len());
        for object in objects {
            let sequence = match &object {
                AclObject::Relation { schema, name } => catalog
                    .sequence(&QualifiedName::new(schema, name))
                    .is_some(),
                AclObject::Schema(_) => false,
            };
            let (bits, kind) = privilege_bits(privileges, &object, sequence)?;
            if !catalog.owns(identity.actor(), &object) {
                return Err(denied(format!(
                    "must be owner of {kind} {}",
                    object_label(&object)
                )));
            }
            // Objects from before roles existed keep having no owner.
            let mut acl = catalog.effective_acl(&object);
            for grantee in &grantees {
                if grant {
                    acl.grant(grantee, bits);
                } else {
                    acl.revoke(grantee, bits);
                }
            }
            acls.push((object, acl));
        }
        let (_, ack) = self.db.set_acls(self.current_txn().as_deref(), acls)?;
        ack.wait().await;
        Ok(StatementResult::command(if grant {
            "GRANT"
        } else {
            "REVOKE"
        }))
    }

    fn grant_objects(
        &self,
        objects: &GrantObjects,
        catalog: &CatalogState,
    ) -> Result<Vec<AclObject>> {
        let schema_of = |name: &ObjectName| -> Result<String> {
            let schema = object_name_parts(name)?.pop().unwrap_or_default();
            if !catalog.schemas.contains_key(&schema) {
                return Err(QuiverError::UndefinedSchema(schema));
            }
            Ok(schema)
        };
        match objects {
            GrantObjects::Tables(names) | GrantObjects::Views(names) => names
                .iter()
                .map(|n| {
                    let name = self.qualified(n)?;
                    if catalog.table(&name).is_none() && catalog.view(&name).is_none() {
                        return Err(QuiverError::UndefinedTable(name.name));
                    }
                    Ok(AclObject::relation(&name))
                })
                .collect(),
            GrantObjects::AllTablesInSchema { schemas } => {
                let mut out = Vec::new();
                for schema in schemas {
                    let schema = schema_of(schema)?;
                    let entry = &catalog.schemas[&schema];
                    for name in entry.tables.keys().chain(entry.views.keys()) {
                        out.push(AclObject::relation(&QualifiedName::new(&schema, name)));
                    }
                }
                Ok(out)
            }
            GrantObjects::Schemas(names) => names
                .iter()
                .map(|n| Ok(AclObject::Schema(schema_of(n)?)))
                .collect(),
            GrantObjects::Sequences(names) => names
                .iter()
                .map(|n| {
                    let name = self.qualified(n)?;
                    if catalog.sequence(&name).is_none() {
                        return Err(QuiverError::UndefinedTable(name.name));
                    }
                    Ok(AclObject::relation(&name))
                })
                .collect(),
            GrantObjects::AllSequencesInSchema { schemas } => {
                let mut out = Vec::new();
                for schema in schemas {
                    let schema = schema_of(schema)?;
                    for name in catalog.schemas[&schema].sequences.keys() {
                        out.push(AclObject::relation(&QualifiedName::new(&schema, name)));
                    }
                }
                Ok(out)
            }
            other => Err(not_supported(format!("GRANT ON {other}"))),
        }
    }

    /// ALTER TABLE/VIEW ... OWNER TO role (superusers only).
    pub(super) async fn set_owner(
        &mut self,
        name: &ObjectName,
        new_owner: &str,
    ) -> Result<StatementResult> {
        self.require_superuser("change the owner of a relation")?;
        let catalog = self.catalog();
        let name = self.qualified(name)?;
        if catalog.table(&name).is_none() && catalog.view(&name).is_none() {
            return Err(QuiverError::UndefinedTable(name.name));
        }
        if !catalog.roles.contains_key(new_owner) {
            return Err(QuiverError::UndefinedRole(new_owner.to_string()));
        }
        let object = AclObject::relation(&name);
        let mut acl = catalog.effective_acl(&object);
        acl.owner = new_owner.to_string();
        let (_, ack) = self
            .db
            .set_acls(self.current_txn().as_deref(), vec![(object, acl)])?;
        ack.wait().await;
        Ok(StatementResult::command("ALTER TABLE"))
    }

    /// Fails with 42501 unless the current role may run `statement`, and
    /// with 0A000 for a statement the classification does not know
    /// (whoever sends it): unknown means denied.
    pub(super) fn authorize(&self, statement: &DfStatement) -> Result<()> {
        let privilege = classify(statement).privilege;
        if privilege == Privilege::Unknown {
            return Err(unsupported(statement));
        }
        let identity = self.info.identity();
        let catalog = self.catalog();
        let actor = identity.actor();
        if catalog.is_superuser(actor) {
            return Ok(());
        }
        match privilege {
            Privilege::Session | Privilege::OwnCheck => Ok(()),
            Privilege::Superuser => Err(denied(match statement {
                DfStatement::Statement(s) if matches!(s.as_ref(), Statement::Copy { .. }) => {
                    "permission denied to COPY to or from a file: only superusers may read or write server files"
                        .into()
                }
                _ => "permission denied: only superusers may read or write server files".into(),
            })),
            Privilege::Objects => match statement {
                DfStatement::Statement(s) => Check {
                    session: self,
                    catalog: &catalog,
                    actor,
                }
                .statement(s),
                DfStatement::Explain(explain) => self.authorize(&explain.statement),
                _ => Err(unsupported(statement)),
            },
            Privilege::Unknown => Err(unsupported(statement)),
        }
    }

    /// CHECKPOINT writes the whole database: superusers only.
    pub(super) fn authorize_checkpoint(&self) -> Result<()> {
        self.require_superuser("run CHECKPOINT")
    }
}

/// The privilege check of one statement for a role that is no superuser.
struct Check<'a> {
    session: &'a Session,
    catalog: &'a CatalogState,
    actor: Actor<'a>,
}

impl Check<'_> {
    fn statement(&self, s: &Statement) -> Result<()> {
        match s {
            Statement::Query(_) => self.reads(s, None),
            Statement::Insert(insert) => {
                let TableObject::TableName(target) = &insert.table else {
                    return Err(not_supported("INSERT INTO a table function"));
                };
                let target = self.session.qualified(target)?;
                self.need(&target, INSERT)?;
                if let Some(OnInsert::OnConflict(OnConflict {
                    action: OnConflictAction::DoUpdate(_),
                    ..
                })) = &insert.on
                {
                    self.need(&target, UPDATE | SELECT)?;
                }
                if insert.returning.is_some() {
                    self.need(&target, SELECT)?;
                }
                self.reads(s, Some(&target))
            }
            Statement::Update(update) => {
                let TableFactor::Table { name, .. } = &update.table.relation else {
                    return self.reads(s, None);
                };
                let target = self.session.qualified(name)?;
                self.need(&target, UPDATE)?;
                if update.selection.is_some() || update.returning.is_some() {
                    self.need(&target, SELECT)?;
                }
                self.reads(s, Some(&target))
            }
            Statement::Delete(delete) => {
                let tables = match &delete.from {
                    FromTable::WithFromKeyword(t) | FromTable::WithoutKeyword(t) => t,
                };
                let Some(TableFactor::Table { name, .. }) = tables.first().map(|t| &t.relation)
                else {
                    return self.reads(s, None);
                };
                let target = self.session.qualified(name)?;
                self.need(&target, DELETE)?;
                if delete.selection.is_some() || delete.returning.is_some() {
                    self.need(&target, SELECT)?;
                }
                self.reads(s, Some(&target))
            }
            Statement::Copy {
                source, to, target, ..
            } => {
                if !matches!(target, CopyTarget::Stdin | CopyTarget::Stdout) {
                    return Err(denied(
                        "permission denied to COPY to or from a file: only superusers may read or write server files"
                            .into(),
                    ));
                }
                match source {
                    CopySource::Table { table_name, .. } => {
                        let name = self.session.qualified(table_name)?;
                        self.need(&name, if *to { SELECT } else { INSERT })
                    }
                    CopySource::Query(_) => self.reads(s, None),
                }
            }
            Statement::Truncate(truncate) => {
                for target in &truncate.table_names {
                    let name = self.session.qualified(&target.name)?;
                    self.need(&name, TRUNCATE)?;
                }
                Ok(())
            }
            // Every role may create temporary tables, in its own schema.
            Statement::CreateTable(create) => {
                let name = self.session.qualified_new(&create.name)?;
                if !create.temporary {
                    self.need_schema(&name.schema, CREATE)?;
                }
                self.reads(s, Some(&name))
            }
            Statement::CreateView(create) => {
                let name = self.session.qualified_new(&create.name)?;
                if !create.temporary {
                    self.need_schema(&name.schema, CREATE)?;
                }
                self.reads(s, Some(&name))
            }
            Statement::CreateSchema { .. } => Err(denied(format!(
                "permission denied for database {}",
                self.session.info.identity().database
            ))),
            Statement::AlterTable(alter) => {
                let name = self.session.qualified(&alter.name)?;
                self.must_own(&name)
            }
            Statement::CreateIndex(create) => {
                let name = self.session.qualified(&create.table_name)?;
                self.must_own(&name)
            }
            Statement::Comment {
                object_type,
                object_name,
                ..
            } => {
                use crate::engine::comments::CommentTarget;
                // A missing object is the statement's own error.
                let Ok(target) = self.session.comment_target(*object_type, object_name) else {
                    return Ok(());
                };
                match target {
                    CommentTarget::Relation { schema, name }
                    | CommentTarget::Column {
                        schema,
                        table: name,
                        ..
                    } => self.must_own(&QualifiedName::new(schema, name)),
                    CommentTarget::Index { .. } => match self.session.find_index(object_name)? {
                        Some((table, _)) => self.must_own(&table),
                        None => Ok(()),
                    },
                    CommentTarget::Schema { name } => {
                        if self
                            .catalog
                            .owns(self.actor, &AclObject::Schema(name.clone()))
                        {
                            Ok(())
                        } else {
                            Err(denied(format!("must be owner of schema {name}")))
                        }
                    }
                }
            }
            Statement::AlterIndex { name, .. } => self.must_own_index(name),
            Statement::Drop {
                object_type, names, ..
            } => match object_type {
                ObjectType::Table | ObjectType::View | ObjectType::Sequence => {
                    for name in names {
                        self.must_own(&self.session.qualified(name)?)?;
                    }
                    Ok(())
                }
                ObjectType::Index => names.iter().try_for_each(|name| self.must_own_index(name)),
                ObjectType::Schema => {
                    for name in names {
                        let schema = object_name_parts(name)?.pop().unwrap_or_default();
                        let object = AclObject::Schema(schema.clone());
                        if self.catalog.schemas.contains_key(&schema)
                            && !self.catalog.owns(self.actor, &object)
                        {
                            return Err(denied(format!("must be owner of schema {schema}")));
                        }
                    }
                    Ok(())
                }
                // DROP ROLE is classified as checking for itself.
                other => Err(denied(format!("permission denied to drop {other}"))),
            },
            Statement::Explain { statement, .. } => self.statement(statement),
            Statement::Declare { stmts } => {
                for query in stmts.iter().filter_map(|d| d.for_query.as_ref()) {
                    self.reads(&Statement::Query(query.clone()), None)?;
                }
                Ok(())
            }
            // Only statements classified as needing object privileges get
            // here; anything else is denied, never allowed by default.
            other => Err(denied(format!(
                "permission denied for {}",
                super::first_words(&other.to_string())
            ))),
        }
    }

    /// SELECT on every relation `s` reads, except one mention of `target`.
    fn reads(&self, s: &Statement, target: Option<&QualifiedName>) -> Result<()> {
        let mut names = Vec::new();
        let _ = datafusion::sql::sqlparser::ast::visit_relations(s, |name| {
            names.push(name.clone());
            std::ops::ControlFlow::<()>::Continue(())
        });
        let mut skipped_target = false;
        for name in &names {
            let Ok(name) = self.session.qualified(name) else {
                continue;
            };
            let is_table = self.catalog.table(&name).is_some()
                || self.catalog.view(&name).is_some()
                || self.catalog.sequence(&name).is_some();
            if !is_table && super::file_functions::FILE_FUNCTIONS.contains(&name.name.as_str()) {
                return Err(denied(format!(
                    "permission denied for function {}: only superusers may read server files",
                    name.name
                )));
            }
            if Some(&name) == target && !skipped_target {
                skipped_target = true;
                continue;
            }
            self.need(&name, SELECT)?;
        }
        Ok(())
    }

    /// `privilege` on a table or view (and USAGE on its schema). Names
    /// that are no relation of ours are left to the planner to report.
    fn need(&self, name: &QualifiedName, privilege: roles::Privileges) -> Result<()> {
        check_relation(self.catalog, self.actor, name, privilege, 0)
    }

    fn need_schema(&self, schema: &str, privilege: roles::Privileges) -> Result<()> {
        if !self.catalog.schemas.contains_key(schema) {
            return Ok(());
        }
        let object = AclObject::Schema(schema.to_string());
        if self.catalog.privileges_on(self.actor, &object) & privilege == 0 {
            return Err(denied(format!("permission denied for schema {schema}")));
        }
        Ok(())
    }

    /// The index's table must be the actor's (an unknown index is left to
    /// the statement to report).
    fn must_own_index(&self, name: &ObjectName) -> Result<()> {
        match self.session.find_index(name)? {
            Some((table, index))
                if !self.catalog.owns(self.actor, &AclObject::relation(&table)) =>
            {
                Err(denied(format!("must be owner of index {index}")))
            }
            _ => Ok(()),
        }
    }

    fn must_own(&self, name: &QualifiedName) -> Result<()> {
        let is_view = self.catalog.view(name).is_some();
        let is_sequence = self.catalog.sequence(name).is_some();
        if self.catalog.table(name).is_none() && !is_view && !is_sequence {
            return Ok(());
        }
        if self.catalog.owns(self.actor, &AclObject::relation(name)) {
            return Ok(());
        }
        let kind = match (is_view, is_sequence) {
            (true, _) => "view",
            (_, true) => "sequence",
            _ => "table",
        };
        Err(denied(format!("must be owner of {kind} {}", name.name)))
    }
}

/// The check for one relation; a view's own reads are checked as its
/// owner, as PostgreSQL does.
fn check_relation(
    catalog: &CatalogState,
    actor: Actor<'_>,
    name: &QualifiedName,
    privilege: roles::Privileges,
    depth: usize,
) -> Result<()> {
    if name.schema == PG_CATALOG || name.schema == INFORMATION_SCHEMA || depth > 32 {
        return Ok(());
    }
    let view = catalog.view(name);
    let sequence = catalog.sequence(name).is_some();
    if catalog.table(name).is_none() && view.is_none() && !sequence {
        return Ok(());
    }
    let schema = AclObject::Schema(name.schema.clone());
    if catalog.privileges_on(actor, &schema) & USAGE == 0 {
        return Err(denied(format!(
            "permission denied for schema {}",
            name.schema
        )));
    }
    let object = AclObject::relation(name);
    if catalog.privileges_on(actor, &object) & privilege == 0 {
        let kind = match (view.is_some(), sequence) {
            (true, _) => "view",
            (_, true) => "sequence",
            _ => "table",
        };
        return Err(denied(format!(
            "permission denied for {kind} {}",
            name.name
        )));
    }
    if let Some(view) = view {
        let owner = catalog.effective_acl(&object).owner;
        if catalog.is_restricted_role(&owner) {
            let owner_actor = Actor {
                name: &owner,
                implicit_superuser: false,
            };
            for read in &view.depends_on {
                check_relation(catalog, owner_actor, read, SELECT, depth + 1)?;
            }
        }
    }
    Ok(())
}

/// Role attributes we do not have: only superusers create roles and
/// databases, and roles have no connection limit or expiry.
fn refuse_role_options(create_db: bool, create_role: bool, limits: bool) -> Result<()> {
    if create_db || create_role {
        return Err(not_supported(
            "CREATEDB and CREATEROLE (only superusers create roles)",
        ));
    }
    if limits {
        return Err(not_supported("CONNECTION LIMIT and VALID UNTIL on roles"));
    }
    Ok(())
}

fn role_name(name: &ObjectName) -> Result<String> {
    let mut parts = object_name_parts(name)?;
    match (parts.pop(), parts.is_empty()) {
        (Some(name), true) => Ok(name),
        _ => Err(QuiverError::Syntax(format!("invalid role name \"{name}\""))),
    }
}

/// The verifier to store for a PASSWORD clause, or None for PASSWORD NULL.
fn password_of(password: &Password) -> Result<Option<String>> {
    use datafusion::sql::sqlparser::ast::{Expr, Value};
    match password {
        Password::NullPassword => Ok(None),
        Password::Password(Expr::Value(v)) => match &v.value {
            Value::SingleQuotedString(s) | Value::EscapedStringLiteral(s) => {
                Ok(Some(password_verifier(s)?))
            }
            Value::Null => Ok(None),
            other => Err(QuiverError::Syntax(format!(
                "a password must be a string literal, not {other}"
            ))),
        },
        Password::Password(other) => Err(QuiverError::Syntax(format!(
            "a password must be a string literal, not {other}"
        ))),
    }
}

fn grantee_name(grantee: &Grantee, catalog: &CatalogState) -> Result<String> {
    if grantee.grantee_type == GranteesType::Public {
        return Ok(PUBLIC.to_string());
    }
    let name = match &grantee.name {
        Some(GranteeName::ObjectName(name)) => role_name(name)?,
        _ => return Err(not_supported(format!("the grantee {grantee}"))),
    };
    if name == PUBLIC {
        return Ok(name);
    }
    if !catalog.roles.contains_key(&name) {
        return Err(QuiverError::UndefinedRole(name));
    }
    Ok(name)
}

/// The bits `privileges` names for `object`, and the object's kind.
fn privilege_bits(
    privileges: &Privileges,
    object: &AclObject,
    sequence: bool,
) -> Result<(roles::Privileges, &'static str)> {
    let (all, kind) = match object {
        AclObject::Schema(_) => (roles::SCHEMA_ALL, "schema"),
        AclObject::Relation { .. } if sequence => (SELECT | UPDATE | USAGE, "sequence"),
        AclObject::Relation { .. } => (roles::TABLE_ALL, "relation"),
    };
    let actions = match privileges {
        Privileges::All { .. } => return Ok((all, kind)),
        Privileges::Actions(actions) => actions,
    };
    let mut bits = 0;
    for action in actions {
        let bit = match action {
            Action::Select { columns: None } => SELECT,
            Action::Insert { columns: None } => INSERT,
            Action::Update { columns: None } => UPDATE,
            Action::Delete => DELETE,
            Action::Truncate => TRUNCATE,
            Action::Usage => USAGE,
            Action::Create { obj_type: None } => CREATE,
            Action::Select { .. } | Action::Insert { .. } | Action::Update { .. } => {
                return Err(not_supported("column privileges"))
            }
            other => return Err(not_supported(format!("the privilege {other}"))),
        };
        if bit & all == 0 {
            return Err(QuiverError::InvalidStatement(format!(
                "invalid privilege type {action} for {kind}"
            )));
        }
        bits |= bit;
    }
    Ok((bits, kind))
}

fn object_label(object: &AclObject) -> String {
    match object {
        AclObject::Schema(s) => s.clone(),
        AclObject::Relation { name, .. } => name.clone(),
    }
}
