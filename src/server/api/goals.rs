//! `/api/v1/repos/{owner}/{name}/goals`: exploration goals, their approaches, claims on
//! them, promotion of the winner and abandonment — what `forge goal` does. Reading needs
//! `read` on the repository; everything else `write`, and what moves a ref passes the gate
//! with the caller's token (an agent narrowed to its approach's ref may claim, heartbeat,
//! release and push that approach, and nothing else).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{ApiError, ApiJson, ApiPath, ErrorBody, RepoPath, blocking, repo_for, required};
use crate::auth::token::Op;
use crate::goals::{Acting, GoalOpError, Promotion};
use crate::history::CommitGraph;
use crate::served::RepoState;
use crate::server::AppState;
use crate::server::auth::Caller;
use crate::store::goals::{
    Approach, ApproachState, ClaimRecord, Goal, GoalError, GoalState, NewGoal, approach_ref, now_ms,
};
use crate::store::policy::RequiredAttestation;
use crate::store::{DataDir, RefTarget, RepoName};

/// The longest time budget a goal may have: ten years.
const MAX_TIME_BUDGET_MS: u64 = 315_360_000_000;

impl From<GoalError> for ApiError {
    fn from(error: GoalError) -> ApiError {
        let status = match &error {
            GoalError::Store(_) => return ApiError::internal(error),
            GoalError::Invalid(_) => StatusCode::BAD_REQUEST,
            GoalError::NotFound(_) | GoalError::ApproachNotFound { .. } => StatusCode::NOT_FOUND,
            _ => StatusCode::CONFLICT,
        };
        match error {
            GoalError::Store(e) => e.into(),
            other => ApiError::new(status, other.code(), other.to_string()),
        }
    }
}

impl From<GoalOpError> for ApiError {
    fn from(error: GoalOpError) -> ApiError {
        match error {
            GoalOpError::Goal(e) => e.into(),
            GoalOpError::Refused(refusal) => refusal.into(),
            GoalOpError::Store(e) => e.into(),
            GoalOpError::Identity(e) => e.into(),
            other => {
                let status = match &other {
                    GoalOpError::Conflict { .. } => StatusCode::CONFLICT,
                    GoalOpError::Provision(_) => StatusCode::BAD_REQUEST,
                    _ => StatusCode::UNPROCESSABLE_ENTITY,
                };
                ApiError::new(status, other.code(), other.to_string())
            }
        }
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub(super) struct GoalPath {
    #[param(pattern = "^[A-Za-z0-9_][A-Za-z0-9._-]{0,99}$")]
    owner: String,
    #[param(pattern = "^[A-Za-z0-9_][A-Za-z0-9._-]{0,99}$")]
    name: String,
    /// The goal's name.
    #[param(pattern = "^[a-z0-9][a-z0-9._-]{0,63}$")]
    goal: String,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub(super) struct ApproachPath {
    #[param(pattern = "^[A-Za-z0-9_][A-Za-z0-9._-]{0,99}$")]
    owner: String,
    #[param(pattern = "^[A-Za-z0-9_][A-Za-z0-9._-]{0,99}$")]
    name: String,
    #[param(pattern = "^[a-z0-9][a-z0-9._-]{0,63}$")]
    goal: String,
    /// The approach's name.
    #[param(pattern = "^[a-z0-9][a-z0-9._-]{0,63}$")]
    approach: String,
}

/// A goal.
#[derive(Serialize, ToSchema)]
pub(super) struct GoalView {
    name: String,
    title: String,
    description: String,
    /// The branch a winner is promoted onto.
    target: String,
    /// Evidence a promotion's new target tip must carry.
    required: Vec<RequiredAttestation>,
    max_approaches: Option<u32>,
    /// Server time (ms since the epoch) after which no approach may be added or claimed.
    deadline: Option<u64>,
    state: GoalState,
    winner: Option<String>,
    /// The commit the promotion moved the target to (SHA-1).
    promoted_commit: Option<String>,
    created_by: Option<String>,
    created_at: u64,
    updated_at: u64,
}

impl From<Goal> for GoalView {
    fn from(goal: Goal) -> GoalView {
        GoalView {
            name: goal.name,
            title: goal.title,
            description: goal.description,
            target: goal.target,
            required: goal.required,
            max_approaches: goal.max_approaches,
            deadline: goal.deadline,
            state: goal.state,
            winner: goal.winner,
            promoted_commit: goal.promoted_commit,
            created_by: goal.created_by,
            created_at: goal.created_at,
            updated_at: goal.updated_at,
        }
    }
}

/// A claim on an approach.
#[derive(Serialize, ToSchema)]
pub(super) struct ClaimView {
    goal: String,
    approach: String,
    /// The fencing token: push with `-o claim=<lease>`, or send `Forge-Claim: <lease>`.
    lease: u64,
    holder: String,
    ttl_ms: u64,
    /// Server time (ms since the epoch) it was taken at.
    claimed_at: u64,
    /// Server time (ms since the epoch) at which it lapses unless renewed.
    expires_at: u64,
    heartbeats: u64,
    /// Whether it holds the approach now (not released, not lapsed).
    live: bool,
}

impl From<ClaimRecord> for ClaimView {
    fn from(claim: ClaimRecord) -> ClaimView {
        ClaimView {
            live: claim.live(now_ms()),
            goal: claim.goal,
            approach: claim.approach,
            lease: claim.lease,
            holder: claim.holder,
            ttl_ms: claim.ttl_ms,
            claimed_at: claim.claimed_at,
            expires_at: claim.expires_at,
            heartbeats: claim.heartbeats,
        }
    }
}

/// An approach, with its ref's tip and its live claim.
#[derive(Serialize, ToSchema)]
pub(super) struct ApproachView {
    name: String,
    /// `refs/goals/<goal>/<name>` (archived: under `refs/archive/goals/`).
    r#ref: String,
    /// The commit it started from (SHA-1).
    base: String,
    /// Its ref's commit now (SHA-1).
    tip: Option<String>,
    state: ApproachState,
    /// Its live claim, if any.
    claim: Option<ClaimView>,
    created_by: Option<String>,
    created_at: u64,
}

/// A goal with its approaches.
#[derive(Serialize, ToSchema)]
pub(super) struct GoalDetail {
    goal: GoalView,
    approaches: Vec<ApproachView>,
}

#[derive(Serialize, ToSchema)]
pub(super) struct GoalList {
    /// By name.
    items: Vec<GoalView>,
}

/// A new goal.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct NewGoalBody {
    /// Unique in the repository: 1 to 64 of `a-z 0-9 - _ .`.
    #[schema(pattern = "^[a-z0-9][a-z0-9._-]{0,63}$")]
    name: String,
    #[schema(min_length = 1, max_length = 256)]
    title: String,
    #[serde(default)]
    description: String,
    /// The branch to promote onto (`refs/heads/…`, or a branch name); default: the
    /// repository's default branch.
    target: Option<String>,
    /// Evidence a promotion's new target tip must carry (as a ref rule's `required`).
    #[serde(default)]
    required: Vec<RequiredAttestation>,
    #[schema(minimum = 1, maximum = 1000)]
    max_approaches: Option<u32>,
    /// From now, how long approaches may be added and claimed (milliseconds, at most ten
    /// years).
    #[schema(minimum = 1, maximum = 315_360_000_000_u64)]
    time_budget_ms: Option<u64>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct NewApproachBody {
    /// 1 to 64 of `a-z 0-9 - _ .` (not `merge` or `archive`).
    #[schema(pattern = "^[a-z0-9][a-z0-9._-]{0,63}$")]
    name: String,
    /// The commit to start from (SHA-1); default: the target's tip.
    #[schema(pattern = "^[0-9a-fA-F]{40}$")]
    base: Option<String>,
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct ClaimBody {
    /// The lease's time to live in milliseconds, at most one hour; the server raises it to
    /// 5 s at least (default 5 min).
    #[schema(minimum = 1, maximum = 3_600_000)]
    ttl_ms: Option<u64>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct LeaseBody {
    /// The lease the claim was taken with.
    #[schema(minimum = 1)]
    lease: u64,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct PromoteBody {
    /// The approach to promote.
    #[schema(pattern = "^[a-z0-9][a-z0-9._-]{0,63}$")]
    approach: String,
}

/// What a promotion did.
#[derive(Serialize, ToSchema)]
pub(super) struct PromotionView {
    /// `landed`: the target moved; `queued`: the merge waits in the goal's merge queue for
    /// its evidence (attest `commit`, then promote again).
    state: String,
    /// The target's new commit, or the queued merge (SHA-1).
    commit: String,
    /// How it landed: `fast_forward`, `merge` or `merge_queue`.
    how: Option<String>,
    /// The merge queue's ref, when queued.
    r#ref: Option<String>,
    /// Where the goal's refs went.
    archived: Vec<String>,
}

#[derive(Serialize, ToSchema)]
pub(super) struct Abandoned {
    goal: GoalView,
    archived: Vec<String>,
}

fn goal_view(repo: &crate::store::Repo, name: &str) -> Result<GoalView, ApiError> {
    repo.meta()
        .find_goal(name)?
        .map(GoalView::from)
        .ok_or_else(|| GoalError::NotFound(name.to_owned()).into())
}

fn approach_view(repo: &crate::store::Repo, approach: Approach) -> Result<ApproachView, ApiError> {
    let shown_ref = approach.current_ref();
    let tip = match repo.read_ref(shown_ref.as_bytes())? {
        Some(RefTarget::Direct(id)) => repo.sha1_of(&id).map(|s| s.to_hex()),
        _ => None,
    };
    let now = now_ms();
    let claim = repo
        .meta()
        .claim_of(&approach.goal, &approach.name)?
        .filter(|c| c.live(now))
        .map(ClaimView::from);
    Ok(ApproachView {
        name: approach.name,
        r#ref: shown_ref,
        base: approach.base,
        tip,
        state: approach.state,
        claim,
        created_by: approach.created_by,
        created_at: approach.created_at,
    })
}

/// List goals
///
/// The repository's exploration goals, by name.
#[utoipa::path(
    get,
    path = "/api/v1/repos/{owner}/{name}/goals",
    operation_id = "goals_list",
    tag = "goals",
    params(RepoPath),
    responses(
        (status = 200, description = "The goals", body = GoalList),
        (status = 401, description = "A private repository without a token, or a token refused", body = ErrorBody),
        (status = 404, description = "No such repository (or the caller may not read it)", body = ErrorBody),
    ),
    security((), ("bearer" = [])),
)]
pub(super) async fn list(
    State(app): State<Arc<AppState>>,
    caller: Caller,
    ApiPath(RepoPath { owner, name }): ApiPath<RepoPath>,
) -> Result<Json<GoalList>, ApiError> {
    blocking(move || {
        let (_, record) = repo_for(&app, caller.token.as_deref(), &owner, &name, Op::Read)?;
        let goals = app.repo_state(record)?.repo.meta().list_goals()?;
        Ok(Json(GoalList {
            items: goals.into_iter().map(GoalView::from).collect(),
        }))
    })
    .await
}

/// Create a goal
///
/// A search space on a target branch: approaches are added to it, agents claim and push them, and the winner is promoted. Needs `write` on the repository and a token that may update the target.
#[utoipa::path(
    post,
    path = "/api/v1/repos/{owner}/{name}/goals",
    operation_id = "goals_create",
    tag = "goals",
    params(RepoPath),
    request_body = NewGoalBody,
    responses(
        (status = 201, description = "Created", body = GoalView),
        (status = 400, description = "A bad name, title, target or limit", body = ErrorBody),
        (status = 401, description = "No token, or one refused", body = ErrorBody),
        (status = 403, description = "The token may not write the repository or its target", body = ErrorBody),
        (status = 404, description = "No such repository (or the caller may not read it)", body = ErrorBody),
        (status = 409, description = "A goal of that name exists", body = ErrorBody),
        (status = 415, description = "The body is not JSON", body = ErrorBody),
        (status = 422, description = "The JSON is not a goal", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(super) async fn create(
    State(app): State<Arc<AppState>>,
    caller: Caller,
    ApiPath(RepoPath { owner, name }): ApiPath<RepoPath>,
    ApiJson(body): ApiJson<NewGoalBody>,
) -> Result<(StatusCode, Json<GoalView>), ApiError> {
    blocking(move || {
        let token = required(&caller)?;
        let (repo_name, record) = repo_for(&app, Some(token), &owner, &name, Op::Write)?;
        let state = app.repo_state(record)?;
        let repo = &state.repo;
        let target = match body.target {
            Some(target) if target.starts_with("refs/") => target,
            Some(branch) => format!("refs/heads/{branch}"),
            None => match repo.read_ref(b"HEAD")? {
                Some(RefTarget::Symbolic(to)) => to.to_string(),
                _ => "refs/heads/main".to_owned(),
            },
        };
        caller.may_update(&repo_name, &target)?;
        let goal = NewGoal {
            name: body.name,
            title: body.title,
            description: body.description,
            target,
            required: body.required,
            max_approaches: body.max_approaches,
            deadline: match body.time_budget_ms {
                Some(budget) if budget == 0 || budget > MAX_TIME_BUDGET_MS => {
                    return Err(ApiError::bad_request(format!(
                        "time_budget_ms is 1 to {MAX_TIME_BUDGET_MS}"
                    )));
                }
                budget => budget.map(|b| now_ms().saturating_add(b)),
            },
        }
        .checked()?;
        let created = repo.create_goal(&goal, &caller.gate_caller().actor())?;
        Ok((StatusCode::CREATED, Json(GoalView::from(created))))
    })
    .await
}

/// Get a goal
///
/// The goal, and each approach with its ref's tip and its live claim.
#[utoipa::path(
    get,
    path = "/api/v1/repos/{owner}/{name}/goals/{goal}",
    operation_id = "goals_get",
    tag = "goals",
    params(GoalPath),
    responses(
        (status = 200, description = "The goal", body = GoalDetail),
        (status = 400, description = "Not a goal name", body = ErrorBody),
        (status = 401, description = "A private repository without a token, or a token refused", body = ErrorBody),
        (status = 404, description = "No such repository or goal", body = ErrorBody),
    ),
    security((), ("bearer" = [])),
)]
pub(super) async fn get(
    State(app): State<Arc<AppState>>,
    caller: Caller,
    ApiPath(GoalPath { owner, name, goal }): ApiPath<GoalPath>,
) -> Result<Json<GoalDetail>, ApiError> {
    blocking(move || {
        let (_, record) = repo_for(&app, caller.token.as_deref(), &owner, &name, Op::Read)?;
        let state = app.repo_state(record)?;
        let repo = &state.repo;
        let goal_record = goal_view(repo, &goal)?;
        let approaches = repo
            .meta()
            .approaches(&goal)?
            .into_iter()
            .map(|a| approach_view(repo, a))
            .collect::<Result<_, _>>()?;
        Ok(Json(GoalDetail {
            goal: goal_record,
            approaches,
        }))
    })
    .await
}

/// Add an approach
///
/// Creates `refs/goals/<goal>/<name>` from `base` or the target's tip, through the gate (the token must allow that ref), and records the approach, in one transaction.
#[utoipa::path(
    post,
    path = "/api/v1/repos/{owner}/{name}/goals/{goal}/approaches",
    operation_id = "goals_add_approach",
    tag = "goals",
    params(GoalPath),
    request_body = NewApproachBody,
    responses(
        (status = 201, description = "Added", body = ApproachView),
        (status = 400, description = "A bad name or base", body = ErrorBody),
        (status = 401, description = "No token, or one refused", body = ErrorBody),
        (status = 403, description = "The token may not write the approach's ref", body = ErrorBody),
        (status = 404, description = "No such repository or goal", body = ErrorBody),
        (status = 409, description = "The approach exists, the goal is closed or full", body = ErrorBody),
        (status = 415, description = "The body is not JSON", body = ErrorBody),
        (status = 422, description = "The base is not a commit here, or the gate refused the ref", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(super) async fn add_approach(
    State(app): State<Arc<AppState>>,
    caller: Caller,
    ApiPath(GoalPath { owner, name, goal }): ApiPath<GoalPath>,
    ApiJson(body): ApiJson<NewApproachBody>,
) -> Result<(StatusCode, Json<ApproachView>), ApiError> {
    blocking(move || {
        let token = required(&caller)?;
        let (repo_name, record) = repo_for(&app, Some(token), &owner, &name, Op::Write)?;
        let base = body
            .base
            .as_deref()
            .map(|h| super::parse_sha1("base", h))
            .transpose()?;
        let state = app.repo_state(record)?;
        let data = super::acting(&app, &caller);
        let added = as_caller(&data, &caller, &repo_name, &state, |acting, graph| {
            crate::goals::add_approach(acting, graph, &goal, &body.name, base)
        })?;
        state.schedule_repack();
        Ok((
            StatusCode::CREATED,
            Json(approach_view(&state.repo, added)?),
        ))
    })
    .await
}

/// The repository of a claim operation: `write` on it, and a token that may write the
/// approach's ref (an agent provisioned for another approach may not claim this one).
fn claim_target(
    app: &AppState,
    caller: &Caller,
    path: &ApproachPath,
) -> Result<Arc<RepoState>, ApiError> {
    let token = required(caller)?;
    let (repo_name, record) = repo_for(app, Some(token), &path.owner, &path.name, Op::Write)?;
    caller.may_update(&repo_name, &approach_ref(&path.goal, &path.approach))?;
    Ok(app.repo_state(record)?)
}

/// Runs a goal operation as the caller, under the lock that serialises the repository's
/// ref updates, with the caller's token asked about every ref it moves.
fn as_caller<T>(
    data: &DataDir,
    caller: &Caller,
    repo_name: &RepoName,
    state: &RepoState,
    operation: impl FnOnce(&Acting<'_>, &mut CommitGraph) -> Result<T, GoalOpError>,
) -> Result<T, ApiError> {
    let may_update = |ref_name: &str| caller.may_update(repo_name, ref_name);
    let acting = Acting {
        repo: &state.repo,
        data,
        caller: caller.gate_caller(),
        may_update: &may_update,
    };
    let _push = state.push_lock();
    Ok(state.with_graph(|graph| operation(&acting, graph))?)
}

/// Claim an approach
///
/// Takes the approach for the caller if no live claim holds it (compare-and-swap: of racing claims exactly one wins), with a new lease (the fencing token: it only grows) and a TTL the server bounds. Pushes to the approach's ref then need the lease (`git push -o claim=<lease>`); heartbeat before `expires_at`.
#[utoipa::path(
    post,
    path = "/api/v1/repos/{owner}/{name}/goals/{goal}/approaches/{approach}/claim",
    operation_id = "goals_claim",
    tag = "goals",
    params(ApproachPath),
    request_body = ClaimBody,
    responses(
        (status = 201, description = "Claimed", body = ClaimView),
        (status = 400, description = "The body is not JSON, or ttl_ms is out of its bounds", body = ErrorBody),
        (status = 401, description = "No token, or one refused", body = ErrorBody),
        (status = 403, description = "The token may not write the approach's ref", body = ErrorBody),
        (status = 404, description = "No such repository, goal or approach", body = ErrorBody),
        (status = 409, description = "Another live claim holds it (`approach_claimed`), or the goal is closed", body = ErrorBody),
        (status = 415, description = "The body is not JSON", body = ErrorBody),
        (status = 422, description = "The JSON is not a claim request", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(super) async fn claim(
    State(app): State<Arc<AppState>>,
    caller: Caller,
    ApiPath(path): ApiPath<ApproachPath>,
    ApiJson(body): ApiJson<ClaimBody>,
) -> Result<(StatusCode, Json<ClaimView>), ApiError> {
    blocking(move || {
        let state = claim_target(&app, &caller, &path)?;
        if body
            .ttl_ms
            .is_some_and(|t| t == 0 || t > crate::store::goals::MAX_CLAIM_TTL_MS)
        {
            return Err(ApiError::bad_request(format!(
                "ttl_ms is 1 to {}",
                crate::store::goals::MAX_CLAIM_TTL_MS
            )));
        }
        let actor = caller.gate_caller().actor();
        let claim = state
            .repo
            .claim(&path.goal, &path.approach, &actor, body.ttl_ms)?;
        Ok((StatusCode::CREATED, Json(ClaimView::from(claim))))
    })
    .await
}

/// Renew a claim
///
/// Extends the caller's live claim by its TTL from now. A claim that lapsed or moved on is `claim_lost`: claim again.
#[utoipa::path(
    post,
    path = "/api/v1/repos/{owner}/{name}/goals/{goal}/approaches/{approach}/heartbeat",
    operation_id = "goals_heartbeat",
    tag = "goals",
    params(ApproachPath),
    request_body = LeaseBody,
    responses(
        (status = 200, description = "Renewed", body = ClaimView),
        (status = 400, description = "The body is not JSON", body = ErrorBody),
        (status = 401, description = "No token, or one refused", body = ErrorBody),
        (status = 403, description = "The token may not write the approach's ref", body = ErrorBody),
        (status = 404, description = "No such repository, goal or approach", body = ErrorBody),
        (status = 409, description = "The lease is not current (`claim_lost`), or the goal ended", body = ErrorBody),
        (status = 415, description = "The body is not JSON", body = ErrorBody),
        (status = 422, description = "The JSON is not a lease", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(super) async fn heartbeat(
    State(app): State<Arc<AppState>>,
    caller: Caller,
    ApiPath(path): ApiPath<ApproachPath>,
    ApiJson(body): ApiJson<LeaseBody>,
) -> Result<Json<ClaimView>, ApiError> {
    blocking(move || {
        let state = claim_target(&app, &caller, &path)?;
        let holder = caller.gate_caller().actor().identity.unwrap_or_default();
        let claim = state
            .repo
            .heartbeat(&path.goal, &path.approach, body.lease, &holder)?;
        Ok(Json(ClaimView::from(claim)))
    })
    .await
}

/// Release a claim
///
/// Ends the caller's live claim; the approach may be claimed again at once (with a new lease).
#[utoipa::path(
    post,
    path = "/api/v1/repos/{owner}/{name}/goals/{goal}/approaches/{approach}/release",
    operation_id = "goals_release",
    tag = "goals",
    params(ApproachPath),
    request_body = LeaseBody,
    responses(
        (status = 200, description = "Released", body = ClaimView),
        (status = 400, description = "The body is not JSON", body = ErrorBody),
        (status = 401, description = "No token, or one refused", body = ErrorBody),
        (status = 403, description = "The token may not write the approach's ref", body = ErrorBody),
        (status = 404, description = "No such repository, goal or approach", body = ErrorBody),
        (status = 409, description = "The lease is not current (`claim_lost`)", body = ErrorBody),
        (status = 415, description = "The body is not JSON", body = ErrorBody),
        (status = 422, description = "The JSON is not a lease", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(super) async fn release(
    State(app): State<Arc<AppState>>,
    caller: Caller,
    ApiPath(path): ApiPath<ApproachPath>,
    ApiJson(body): ApiJson<LeaseBody>,
) -> Result<Json<ClaimView>, ApiError> {
    blocking(move || {
        let state = claim_target(&app, &caller, &path)?;
        let actor = caller.gate_caller().actor();
        let claim = state
            .repo
            .release(&path.goal, &path.approach, body.lease, &actor)?;
        Ok(Json(ClaimView::from(claim)))
    })
    .await
}

/// Promote an approach
///
/// Moves the goal's target to the approach through the gate (its ref rules, and the evidence the goal demands): by fast-forward when the approach contains the target; otherwise by a server-side merge, refused with the conflicting paths when it does not merge cleanly. When the goal demands evidence, the merge is published to `refs/goals/<goal>/merge/<n>` (202): attest it, then promote again. Landed, the goal records the winner, its refs move under `refs/archive/goals/` and its claims end.
#[utoipa::path(
    post,
    path = "/api/v1/repos/{owner}/{name}/goals/{goal}/promote",
    operation_id = "goals_promote",
    tag = "goals",
    params(GoalPath),
    request_body = PromoteBody,
    responses(
        (status = 200, description = "Landed on the target", body = PromotionView),
        (status = 202, description = "The merge waits in the merge queue for its evidence", body = PromotionView),
        (status = 400, description = "The body is not JSON", body = ErrorBody),
        (status = 401, description = "No token, or one refused", body = ErrorBody),
        (status = 403, description = "The token may not update the target", body = ErrorBody),
        (status = 404, description = "No such repository, goal or approach", body = ErrorBody),
        (status = 409, description = "A merge conflict (`merge_conflict`, with the paths), the goal ended, or the target moved meanwhile", body = ErrorBody),
        (status = 415, description = "The body is not JSON", body = ErrorBody),
        (status = 422, description = "Refused by the gate: the goal's evidence (FORGE-G001), a ref rule (FORGE-P…); or nothing to promote", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(super) async fn promote(
    State(app): State<Arc<AppState>>,
    caller: Caller,
    ApiPath(GoalPath { owner, name, goal }): ApiPath<GoalPath>,
    ApiJson(body): ApiJson<PromoteBody>,
) -> Result<(StatusCode, Json<PromotionView>), ApiError> {
    blocking(move || {
        let token = required(&caller)?;
        let (repo_name, record) = repo_for(&app, Some(token), &owner, &name, Op::Write)?;
        let state = app.repo_state(record)?;
        let data = super::acting(&app, &caller);
        let promoted = as_caller(&data, &caller, &repo_name, &state, |acting, graph| {
            crate::goals::promote(acting, graph, &goal, &body.approach)
        })?;
        state.schedule_repack();
        Ok(match promoted {
            Promotion::Landed {
                commit,
                how,
                archived,
            } => (
                StatusCode::OK,
                Json(PromotionView {
                    state: "landed".into(),
                    commit: commit.to_hex(),
                    how: Some(how.into()),
                    r#ref: None,
                    archived,
                }),
            ),
            Promotion::Queued { r#ref, commit } => (
                StatusCode::ACCEPTED,
                Json(PromotionView {
                    state: "queued".into(),
                    commit: commit.to_hex(),
                    how: None,
                    r#ref: Some(r#ref),
                    archived: Vec::new(),
                }),
            ),
        })
    })
    .await
}

/// Abandon a goal
///
/// Ends the goal without a winner: its refs move under `refs/archive/goals/`, its claims end. Needs `write` on the repository and a token that may update the target.
#[utoipa::path(
    post,
    path = "/api/v1/repos/{owner}/{name}/goals/{goal}/abandon",
    operation_id = "goals_abandon",
    tag = "goals",
    params(GoalPath),
    responses(
        (status = 200, description = "Abandoned", body = Abandoned),
        (status = 401, description = "No token, or one refused", body = ErrorBody),
        (status = 403, description = "The token may not update the goal's target", body = ErrorBody),
        (status = 404, description = "No such repository or goal", body = ErrorBody),
        (status = 409, description = "The goal ended already", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(super) async fn abandon(
    State(app): State<Arc<AppState>>,
    caller: Caller,
    ApiPath(GoalPath { owner, name, goal }): ApiPath<GoalPath>,
) -> Result<Json<Abandoned>, ApiError> {
    blocking(move || {
        let token = required(&caller)?;
        let (repo_name, record) = repo_for(&app, Some(token), &owner, &name, Op::Write)?;
        let state = app.repo_state(record)?;
        let target = goal_view(&state.repo, &goal)?.target;
        caller.may_update(&repo_name, &target)?;
        let data = super::acting(&app, &caller);
        let archived = as_caller(&data, &caller, &repo_name, &state, |acting, graph| {
            crate::goals::abandon(acting, graph, &goal)
        })?;
        Ok(Json(Abandoned {
            goal: goal_view(&state.repo, &goal)?,
            archived,
        }))
    })
    .await
}

/// A provisioning: agents for a goal.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ProvisionBody {
    /// `owner/name`.
    #[schema(pattern = "^[A-Za-z0-9_][A-Za-z0-9._-]{0,99}/[A-Za-z0-9_][A-Za-z0-9._-]{0,99}$")]
    repo: String,
    #[schema(pattern = "^[a-z0-9][a-z0-9._-]{0,63}$")]
    goal: String,
    /// How many agents (1 to 64).
    #[schema(minimum = 1, maximum = 64)]
    agents: u32,
    /// The human they belong to: the caller unless a site admin names another.
    owner: Option<String>,
    /// Approaches given out in turn, made from the target's tip when missing; default: the
    /// goal's approaches.
    #[serde(default)]
    approaches: Vec<String>,
    /// The tokens' lifetime (default one day, at most 30 days, never past the caller's).
    #[schema(minimum = 1, maximum = 2_592_000)]
    ttl_seconds: Option<u64>,
    /// `none` (default), or `generate`: a key pair each, the private key in this answer only.
    keys: Option<String>,
    /// Instead of `keys`, one public key per agent (64 hex digits each).
    #[serde(default)]
    public_keys: Vec<String>,
}

/// An agent, ready to start.
#[derive(Serialize, ToSchema)]
pub(super) struct AgentKit {
    #[serde(flatten)]
    agent: crate::goals::provision::ProvisionedAgent,
    /// What stock git clones and pushes with (the token in it).
    clone_url: String,
    /// `KEY=value` lines to start the agent with.
    env: String,
}

#[derive(Serialize, ToSchema)]
pub(super) struct Provisioned {
    repo: String,
    goal: String,
    agents: Vec<AgentKit>,
}

/// Provision agents
///
/// Creates N agent identities owned by a human, each with an approach of the goal (given out in turn, made when missing) and a token narrowed to read the repository and write only that approach's ref (so: claim, heartbeat, release and push it, and upload attestations), with an expiry; optionally a key pair or a supplied public key each. Returns per agent its clone URL, ref and an environment file. Revoking the caller's token revokes theirs; the goal's end revokes them too. Needs `write` on the repository, and the caller is the owner (or a site admin).
#[utoipa::path(
    post,
    path = "/api/v1/provision",
    operation_id = "provision",
    tag = "goals",
    request_body = ProvisionBody,
    responses(
        (status = 201, description = "The agents, with their tokens (and private keys) shown this once", body = Provisioned),
        (status = 400, description = "A bad count, name, key or lifetime", body = ErrorBody),
        (status = 401, description = "No token, or one refused", body = ErrorBody),
        (status = 403, description = "The caller may not write the repository or its approaches' refs, or provision for another owner", body = ErrorBody),
        (status = 404, description = "No such repository, goal or owner", body = ErrorBody),
        (status = 409, description = "The goal is closed", body = ErrorBody),
        (status = 415, description = "The body is not JSON", body = ErrorBody),
        (status = 422, description = "The JSON is not a provisioning", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(super) async fn provision(
    State(app): State<Arc<AppState>>,
    caller: Caller,
    client: crate::server::forwarded::Client,
    ApiJson(body): ApiJson<ProvisionBody>,
) -> Result<(StatusCode, Json<Provisioned>), ApiError> {
    blocking(move || {
        let token = required(&caller)?;
        let (owner_part, name_part) = body
            .repo
            .split_once('/')
            .ok_or_else(|| ApiError::bad_request("repo is owner/name"))?;
        let (repo_name, record) = repo_for(&app, Some(token), owner_part, name_part, Op::Write)?;
        let owner = body.owner.clone().unwrap_or_else(|| token.identity.clone());
        if !owner.eq_ignore_ascii_case(&token.identity) && !caller.site_admin() {
            return Err(ApiError::forbidden(format!(
                "{} may provision agents of its own only",
                token.identity
            )));
        }
        let keys = match (body.keys.as_deref(), body.public_keys.is_empty()) {
            (None | Some("none"), true) => crate::goals::provision::Keys::None,
            (Some("generate"), true) => crate::goals::provision::Keys::Generate,
            (None, false) => crate::goals::provision::Keys::Supplied(body.public_keys.clone()),
            (Some(other), true) => {
                return Err(ApiError::bad_request(format!(
                    "keys is none or generate, not {other:?}"
                )));
            }
            (Some(_), false) => {
                return Err(ApiError::bad_request(
                    "keys and public_keys do not go together",
                ));
            }
        };
        let state = app.repo_state(record)?;
        let approaches = if body.approaches.is_empty() {
            state
                .repo
                .meta()
                .approaches(&body.goal)?
                .into_iter()
                .map(|a| a.name)
                .collect()
        } else {
            body.approaches.clone()
        };
        // The agents' tokens reach no further than the caller's.
        for approach in &approaches {
            caller.may_update(&repo_name, &approach_ref(&body.goal, approach))?;
        }
        let mut ttl = std::time::Duration::from_secs(
            body.ttl_seconds
                .unwrap_or(crate::goals::provision::DEFAULT_AGENT_TTL.as_secs()),
        );
        if let Some(limit) = token.compiled.expires()
            && let Ok(left) = limit.duration_since(std::time::SystemTime::now())
        {
            ttl = ttl.min(left);
        }
        let mut parents = token.compiled.parents().to_vec();
        parents.extend(token.biscuit.revocation_identifiers().into_iter().take(1));
        let request = crate::goals::provision::ProvisionRequest {
            repo: repo_name.clone(),
            goal: body.goal.clone(),
            owner,
            count: body.agents,
            approaches: body.approaches,
            ttl,
            keys,
            parents,
        };
        let data = super::acting(&app, &caller);
        let agents = as_caller(&data, &caller, &repo_name, &state, |acting, graph| {
            crate::goals::provision::provision(acting, graph, app.auth.root_key(), &request)
        })?;
        let server_url = client.url("");
        let agents = agents
            .into_iter()
            .map(|agent| AgentKit {
                clone_url: agent.clone_url(&repo_name, &server_url),
                env: agent.env_file(&repo_name, &body.goal, &server_url),
                agent,
            })
            .collect();
        Ok((
            StatusCode::CREATED,
            Json(Provisioned {
                repo: repo_name.to_string(),
                goal: body.goal,
                agents,
            }),
        ))
    })
    .await
}
