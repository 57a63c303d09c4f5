//! Ref values and compare-and-swap updates.

use super::events::NewEvent;
use bstr::{BString, ByteSlice};

use crate::object::ObjectId;

/// What a ref points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefTarget {
    Direct(ObjectId),
    Symbolic(BString),
}

impl RefTarget {
    pub(crate) fn encode(&self) -> Vec<u8> {
        match self {
            RefTarget::Direct(id) => {
                let mut out = vec![0];
                out.extend_from_slice(id.as_bytes());
                out
            }
            RefTarget::Symbolic(name) => {
                let mut out = vec![1];
                out.extend_from_slice(name);
                out
            }
        }
    }

    pub(crate) fn decode(bytes: &[u8]) -> Option<RefTarget> {
        match bytes.split_first()? {
            (0, id) => ObjectId::from_bytes(id).map(RefTarget::Direct),
            (1, name) => Some(RefTarget::Symbolic(name.into())),
            _ => None,
        }
    }
}

impl std::fmt::Display for RefTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RefTarget::Direct(id) => write!(f, "{id}"),
            RefTarget::Symbolic(name) => write!(f, "ref: {}", name.as_bstr()),
        }
    }
}

/// What a ref must hold for an update to apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expected {
    Any,
    Absent,
    Value(RefTarget),
}

/// One ref update; a batch of them applies all or none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefUpdate {
    pub name: BString,
    pub expected: Expected,
    /// `None` deletes the ref.
    pub new: Option<RefTarget>,
}

/// A ref update the store may publish: one the gate (`crate::gate`) decided on, or one an
/// import writes. Its constructors are public because Rust cannot limit them to one module
/// above the store; `tests/it/architecture.rs` holds `by_gate` to `src/gate/` and
/// `by_import` to `src/import/`, so no other code can move a ref around the gate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorized {
    update: RefUpdate,
    /// The event the update writes when it is published.
    event: Option<NewEvent>,
    /// The claim on the approach whose ref this is, as the gate saw it: checked again in
    /// the commit's transaction.
    fence: Option<super::goals::ClaimFence>,
}

impl Authorized {
    /// For the gate only, with the event that tells of the update.
    pub fn by_gate(update: RefUpdate, event: NewEvent) -> Authorized {
        Authorized {
            update,
            event: Some(event),
            fence: None,
        }
    }

    /// For the gate only: the update holds only while the approach's claim is `fence`.
    pub fn fenced(mut self, fence: super::goals::ClaimFence) -> Authorized {
        self.fence = Some(fence);
        self
    }

    /// For `forge import` only: the operator copies a repository's refs as they are, with
    /// nothing a policy could refuse (and no event per ref of a copied history).
    pub fn by_import(update: RefUpdate) -> Authorized {
        Authorized {
            update,
            event: None,
            fence: None,
        }
    }

    pub fn update(&self) -> &RefUpdate {
        &self.update
    }

    pub fn event(&self) -> Option<&NewEvent> {
        self.event.as_ref()
    }

    pub fn fence(&self) -> Option<&super::goals::ClaimFence> {
        self.fence.as_ref()
    }
}
