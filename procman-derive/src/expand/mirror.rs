//! The `#[shared(client)]` helpers on the async proxy: a helper becomes an `async fn` with the
//! same signature, whose body is the helper's with each call of a proxy method on `self`
//! awaited.
//!
//! Only direct calls are rewritten: `self.get(key)?` becomes `self.get(key).await?`. A helper is
//! left out of the async proxy (the blocking proxy keeps it) when the rewritten body could not
//! mean what the helper's means:
//!
//! - a call of a proxy method on `self` inside a closure, an `async` block or a nested item
//!   (it cannot be awaited there);
//! - `self` used otherwise (passed on, in a macro's tokens or format string, a method that is
//!   not the proxy's):
//!   there `self` would be the async proxy instead of the blocking one;
//! - `Self` in its signature or body, for the same reason;
//! - a call of a helper that is itself left out, or recursion among helpers (an `async fn`
//!   cannot call itself without boxing).
//!
//! A call of a `#[shared(proxy)]` method is awaited and its async proxy turned back into the
//! blocking one, so that every rewritten call has the type the helper's body expects.

use crate::ast::SharedImpl;
use proc_macro2::{TokenStream, TokenTree};
use quote::ToTokens;
use std::collections::{BTreeMap, BTreeSet};
use syn::visit_mut::{self, VisitMut};
use syn::{Expr, FnArg, ImplItemFn, Item, Macro};

/// The helpers of `model` as methods of the async proxy, in order; those that cannot be
/// mirrored are left out.
pub(super) fn async_client_methods(model: &SharedImpl) -> Vec<ImplItemFn> {
    // The proxy's methods: `true` for those that return a proxy.
    let exposed: BTreeMap<String, bool> =
        model.exposed().map(|m| (m.ident().to_string(), m.attrs.proxy.is_some())).collect();
    let helpers: BTreeSet<String> = model.client_methods.iter().map(|f| f.sig.ident.to_string()).collect();
    let mut mirrored: BTreeMap<String, Mirrored> = model
        .client_methods
        .iter()
        .filter_map(|f| mirror(f, &exposed, &helpers).map(|m| (f.sig.ident.to_string(), m)))
        .collect();
    loop {
        let before = mirrored.len();
        let cyclic: BTreeSet<String> =
            mirrored.keys().filter(|name| reaches_itself(name, &mirrored)).cloned().collect();
        let kept: BTreeSet<String> = mirrored.keys().cloned().collect();
        mirrored.retain(|name, m| !cyclic.contains(name) && m.calls.iter().all(|callee| kept.contains(callee)));
        if mirrored.len() == before {
            break;
        }
    }
    model.client_methods.iter().filter_map(|f| mirrored.remove(&f.sig.ident.to_string()).map(|m| m.method)).collect()
}

/// A helper rewritten for the async proxy.
struct Mirrored {
    method: ImplItemFn,
    /// The helpers it calls.
    calls: BTreeSet<String>,
}

/// True when `name` calls itself, through other helpers or directly.
fn reaches_itself(name: &str, mirrored: &BTreeMap<String, Mirrored>) -> bool {
    let mut seen = BTreeSet::new();
    let mut todo: Vec<&str> = mirrored[name].calls.iter().map(String::as_str).collect();
    while let Some(next) = todo.pop() {
        if next == name {
            return true;
        }
        if seen.insert(next)
            && let Some(m) = mirrored.get(next)
        {
            todo.extend(m.calls.iter().map(String::as_str));
        }
    }
    false
}

fn mirror(f: &ImplItemFn, exposed: &BTreeMap<String, bool>, helpers: &BTreeSet<String>) -> Option<Mirrored> {
    let sig = &f.sig;
    if sig.asyncness.is_some() || sig.constness.is_some() {
        return None;
    }
    // `Self` outside the receiver (`self: &Self`), or in the body.
    let mut signature = sig.generics.to_token_stream();
    sig.output.to_tokens(&mut signature);
    for input in &sig.inputs {
        if let FnArg::Typed(typed) = input {
            typed.to_tokens(&mut signature);
        }
    }
    if mentions(signature, "Self") || mentions(f.block.to_token_stream(), "Self") {
        return None;
    }
    let mut rewrite = Rewrite { exposed, helpers, closures: 0, items: 0, ok: true, calls: BTreeSet::new() };
    let mut method = f.clone();
    rewrite.visit_block_mut(&mut method.block);
    if !rewrite.ok {
        return None;
    }
    method.sig.asyncness = Some(syn::Token![async](sig.fn_token.span));
    Some(Mirrored { method, calls: rewrite.calls })
}

/// Awaits the proxy's methods called on `self`, and checks that nothing else stands in the way.
struct Rewrite<'a> {
    exposed: &'a BTreeMap<String, bool>,
    helpers: &'a BTreeSet<String>,
    /// Inside this many closures and `async` blocks.
    closures: usize,
    /// Inside this many nested items (where `self` is another value).
    items: usize,
    /// Nothing found that prevents mirroring.
    ok: bool,
    calls: BTreeSet<String>,
}

impl VisitMut for Rewrite<'_> {
    fn visit_expr_mut(&mut self, expr: &mut Expr) {
        if let Expr::MethodCall(call) = expr
            && is_self(&call.receiver)
        {
            let method = call.method.to_string();
            let returns_proxy = match (self.exposed.get(&method), self.helpers.contains(&method)) {
                (Some(&returns_proxy), _) => returns_proxy,
                (None, true) => false,
                (None, false) => {
                    // Another method on `self` (through the blocking proxy's `Deref`, say): the
                    // async proxy does not have it. In a nested item, `self` is another value.
                    if self.items == 0 {
                        self.ok = false;
                    }
                    return visit_mut::visit_expr_mut(self, expr);
                }
            };
            if self.closures > 0 || self.items > 0 {
                self.ok = false;
                return;
            }
            for arg in &mut call.args {
                self.visit_expr_mut(arg);
            }
            if self.helpers.contains(&method) {
                self.calls.insert(method);
            }
            let call = &*call;
            *expr = if returns_proxy {
                syn::parse_quote!(::core::result::Result::map(#call.await, ::procman::AsyncProxy::into_blocking))
            } else {
                syn::parse_quote!(#call.await)
            };
            return;
        }
        match expr {
            Expr::Closure(_) | Expr::Async(_) => {
                self.closures += 1;
                visit_mut::visit_expr_mut(self, expr);
                self.closures -= 1;
            }
            Expr::Path(path) if self.items == 0 && path.qself.is_none() && path.path.is_ident("self") => {
                self.ok = false;
            }
            _ => visit_mut::visit_expr_mut(self, expr),
        }
    }

    fn visit_item_mut(&mut self, item: &mut Item) {
        self.items += 1;
        visit_mut::visit_item_mut(self, item);
        self.items -= 1;
    }

    fn visit_macro_mut(&mut self, mac: &mut Macro) {
        // The tokens of a macro are not parsed: a `self` there, or in a format string
        // (`"{self:?}"`), is out of reach.
        if mentions(mac.tokens.clone(), "self") || in_literal(mac.tokens.clone(), "self") {
            self.ok = false;
        }
    }
}

/// `self`, literally.
fn is_self(expr: &Expr) -> bool {
    matches!(expr, Expr::Path(path) if path.attrs.is_empty() && path.qself.is_none() && path.path.is_ident("self"))
}

/// True when a literal of `tokens` contains `text`, in groups too.
fn in_literal(tokens: TokenStream, text: &str) -> bool {
    tokens.into_iter().any(|token| match token {
        TokenTree::Literal(literal) => literal.to_string().contains(text),
        TokenTree::Group(group) => in_literal(group.stream(), text),
        _ => false,
    })
}

/// True when `tokens` hold the identifier `name`, in groups too.
fn mentions(tokens: TokenStream, name: &str) -> bool {
    tokens.into_iter().any(|token| match token {
        TokenTree::Ident(ident) => ident == name,
        TokenTree::Group(group) => mentions(group.stream(), name),
        _ => false,
    })
}
