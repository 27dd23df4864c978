//! The rules: every unsupported shape is an error at the offending tokens, saying what is
//! supported. A method or creator with an error is marked, and gets no generated twin, so
//! that one mistake gives one message.

use crate::ast::{Creator, ManagerImpl, ManagerStruct, Method, Receiver, SharedImpl, SharedType};
use crate::ctxt::Errors;
use crate::symbol::{EXPOSED, ON_DISCONNECT, PROXY, RENAME, SINGLETON, SKIP, UNDO};
use std::collections::BTreeSet;
use syn::{Fields, GenericParam, Generics, Ident, Signature, Type};

const STATIC_ONLY: &str = "shared types must be 'static: a manager keeps its objects for as long as \
     any process holds a proxy; remove the lifetime parameter";

/// `#[derive(Shared)]`.
pub(crate) fn shared_type(model: &SharedType<'_>, errors: &mut Errors) {
    if let syn::Data::Union(data) = &model.input.data {
        errors.error(data.union_token, "`#[derive(Shared)]` supports structs and enums, not unions");
    }
    no_lifetimes(model.generics, errors);
}

fn no_lifetimes(generics: &Generics, errors: &mut Errors) {
    for param in &generics.params {
        if let GenericParam::Lifetime(lifetime) = param {
            errors.error(lifetime, STATIC_ONLY);
        }
    }
}

/// `#[shared]` on an impl block.
pub(crate) fn shared_impl(model: &mut SharedImpl, errors: &mut Errors) {
    let item = &model.item;
    if let Some((_, trait_path, _)) = &item.trait_ {
        errors.error(
            trait_path,
            "`#[shared]` goes on the inherent impl block of the type (`impl Foo { ... }`), not on a \
             trait impl: expose the trait's behaviour through methods of an inherent impl",
        );
        return;
    }
    if model.proxy_ty.is_none() {
        errors.error(
            &item.self_ty,
            "`#[shared]` goes on the impl block of a named type with `#[derive(Shared)]`, as in \
             `impl Foo { ... }`",
        );
        return;
    }
    no_lifetimes(&item.generics, errors);

    if let Some(list) = &model.exposed_list {
        for name in list {
            match model.methods.iter().find(|m| m.ident() == name) {
                None => errors.error(name, format_args!("no method `{name}` in this impl block")),
                Some(m) if m.receiver == Receiver::None => errors.error(
                    name,
                    format_args!("`{name}` has no `self`: only methods taking `&self` or `&mut self` can be exposed"),
                ),
                Some(_) => {}
            }
        }
    }

    // What `undo = method` may name, and what it may not.
    let undoers = Undoers {
        exposed: model.methods.iter().filter(|m| m.exposed).map(|m| (m.ident().clone(), m.args.len())).collect(),
        unexposed: model.methods.iter().filter(|m| !m.exposed).map(|m| m.ident().clone()).collect(),
        client: model.client_methods.iter().map(|f| f.sig.ident.clone()).collect(),
    };
    let mut on_disconnect_seen = false;
    let mut wire_names = BTreeSet::new();
    for method in &mut model.methods {
        let mut method_errors = Errors::default();
        helper_conflicts(method, model.exposed_list.is_some(), &mut method_errors);
        undo_target(method, &undoers, &mut method_errors);
        if method.exposed && !wire_names.insert(method.wire_name()) {
            let message = format_args!(
                "two exposed methods have the wire name `{}`: each needs its own (`#[shared({RENAME} = \"...\")]`)",
                method.wire_name()
            );
            match &method.attrs.rename {
                Some(rename) => method_errors.error(rename, message),
                None => method_errors.error(method.ident(), message),
            }
        }
        if method.attrs.on_disconnect.is_some() {
            if on_disconnect_seen {
                let span = method.attrs.on_disconnect.unwrap_or_else(|| method.ident().span());
                method_errors.error_at(span, format_args!("duplicate `{ON_DISCONNECT}` method: one per impl block"));
            }
            on_disconnect_seen = true;
            on_disconnect_shape(method, &mut method_errors);
        }
        if method.exposed {
            exposed_shape(method, &mut method_errors);
        }
        // An associated fn named in `exposed(...)` was reported at the name.
        method.ok = method_errors.is_empty() && !(method.exposed && method.receiver == Receiver::None);
        if let Some(e) = method_errors.into_error() {
            errors.push(e);
        }
    }
}

fn helper_conflicts(method: &Method, has_list: bool, errors: &mut Errors) {
    let attrs = &method.attrs;
    if let (Some(_), Some(proxy)) = (attrs.skip, attrs.proxy) {
        errors.error_at(proxy, format_args!("`{PROXY}` has no effect on a method marked `{SKIP}`"));
    }
    if let Some(span) = attrs.on_disconnect {
        if attrs.skip.is_some() || attrs.proxy.is_some() {
            errors.error_at(
                span,
                format_args!("`{ON_DISCONNECT}` cannot be combined with `{SKIP}` or `{PROXY}`: it is never exposed"),
            );
        } else if method.exposed {
            errors.error_at(
                span,
                format_args!("an `{ON_DISCONNECT}` method is not exposed; remove it from `{EXPOSED}(...)`"),
            );
        }
    }
    if let Some(skip) = attrs.skip
        && has_list
        && method.exposed
    {
        errors.error_at(
            skip,
            format_args!("`{}` is named in `{EXPOSED}(...)`; remove it there or remove `{SKIP}`", method.ident()),
        );
    }
    if let Some(rename) = &attrs.rename
        && !method.exposed
    {
        errors.error(rename, format_args!("`{RENAME}` on a method that is not exposed: it has no wire name"));
    }
    if let Some(undo) = &attrs.undo
        && !method.exposed
    {
        errors.error(
            &undo.tokens,
            format_args!(
                "`{UNDO}` on a method that is not exposed: it has no async proxy twin whose result could be lost"
            ),
        );
    }
    if let Some(proxy) = attrs.proxy
        && !method.exposed
        && attrs.skip.is_none()
    {
        errors.error_at(
            proxy,
            format_args!(
                "`{PROXY}` on a method that is not exposed: exposed methods are the `pub` ones \
                     taking `&self` or `&mut self` (or those named in `{EXPOSED}(...)`)"
            ),
        );
    }
}

/// The methods of a block, as `undo = method` may name them.
struct Undoers {
    /// The exposed methods, with their number of arguments besides `self`.
    exposed: Vec<(Ident, usize)>,
    unexposed: Vec<Ident>,
    client: Vec<Ident>,
}

/// `undo = other`: `other` is another exposed method of the block, taking exactly one argument
/// (the result's bytes) besides `&self`.
fn undo_target(method: &Method, undoers: &Undoers, errors: &mut Errors) {
    let Some(undo) = &method.attrs.undo else { return };
    let name = &undo.method;
    if !method.exposed {
        // The method itself is no exposed one: reported by `helper_conflicts`.
        return;
    }
    if name == method.ident() {
        errors.error(
            &undo.tokens,
            format_args!(
                "`{UNDO} = {name}` names the method itself: `{UNDO}` names another exposed method, \
                 which takes this method's result back"
            ),
        );
        return;
    }
    let what = format!("`{UNDO}` names an exposed method taking one argument, which gets this method's result back");
    match undoers.exposed.iter().find(|(ident, _)| ident == name) {
        None if undoers.client.contains(name) => errors.error(
            &undo.tokens,
            format_args!("`{UNDO} = {name}`: `{name}` is a `client` method, which runs in the caller; {what}"),
        ),
        None if undoers.unexposed.contains(name) => {
            errors.error(&undo.tokens, format_args!("`{UNDO} = {name}`: `{name}` is not exposed; {what}"))
        }
        None => {
            errors.error(&undo.tokens, format_args!("`{UNDO} = {name}`: no method `{name}` in this impl block; {what}"))
        }
        Some((_, 1)) => {}
        Some((_, count)) => errors.error(
            &undo.tokens,
            format_args!(
                "`{UNDO} = {name}`: `{name}` takes {count} arguments besides `&self`; the method \
                 named by `{UNDO}` takes exactly one, which gets this method's result back"
            ),
        ),
    }
}

fn on_disconnect_shape(method: &Method, errors: &mut Errors) {
    let sig = &method.sig;
    let expected = "an `on_disconnect` method has the shape `fn(&self, caller: ::procman::Caller)` \
                    (or `&mut self`)";
    if !matches!(method.receiver, Receiver::Shared | Receiver::Exclusive) {
        errors.error_at(method.receiver_span(), expected);
    } else if method.args.len() != 1 {
        errors.error(&sig.inputs, expected);
    }
    plain_fn(sig, "an `on_disconnect` method", errors);
}

fn exposed_shape(method: &Method, errors: &mut Errors) {
    let sig = &method.sig;
    match method.receiver {
        // `None`: reported at the name in `exposed(...)`.
        Receiver::Shared | Receiver::Exclusive | Receiver::None => {}
        Receiver::Other => errors.error_at(
            method.receiver_span(),
            format_args!(
                "an exposed method takes `&self` or `&mut self`: the object stays in the manager, \
                 so it cannot be taken by value; change the receiver or mark the method `#[shared({SKIP})]`"
            ),
        ),
    }
    plain_fn(sig, "an exposed method", errors);
    for arg in &method.args {
        if let Err(e) = &arg.kind {
            errors.push(e.clone());
        }
    }
    match &method.ret {
        Err(e) => errors.push(e.clone()),
        Ok(ret) => {
            if method.attrs.proxy.is_some() && ret.ok_type().is_none() {
                errors.error(
                    &sig.ident,
                    format_args!(
                        "a `#[shared({PROXY})]` method returns the new shared object (or \
                         `Result<Object>`), whose proxy the caller gets"
                    ),
                );
            }
        }
    }
}

/// No `async`, `unsafe`, generics or where clause: the server calls the fn with decoded,
/// concrete arguments.
fn plain_fn(sig: &Signature, what: &str, errors: &mut Errors) {
    if let Some(token) = &sig.asyncness {
        errors.error(
            token,
            format_args!(
                "{what} cannot be `async`: the manager calls methods synchronously, one thread \
                 per client connection; make it a plain fn"
            ),
        );
    }
    if let Some(token) = &sig.unsafety {
        errors.error(
            token,
            format_args!("{what} cannot be `unsafe`: the manager calls it with no way to uphold its contract"),
        );
    }
    if let Some(variadic) = &sig.variadic {
        errors.error(variadic, format_args!("{what} cannot be variadic"));
    }
    let generics = &sig.generics;
    if generics.params.iter().any(|p| !matches!(p, GenericParam::Lifetime(_))) {
        errors.error(
            &generics.params,
            format_args!(
                "{what} cannot be generic: the manager decodes arguments into concrete types; \
                 make it non-generic (or mark it `#[shared({SKIP})]`)"
            ),
        );
    } else if !generics.params.is_empty() {
        errors.error(
            &generics.params,
            format_args!("{what} cannot have lifetime parameters: use elided references (`&str`, `&[T]`, `&T`)"),
        );
    } else if let Some(where_clause) = &generics.where_clause {
        errors.error(where_clause, format_args!("{what} cannot have a where clause: put the bounds on the impl block"));
    }
}

/// `#[manager]` on a struct.
pub(crate) fn manager_struct(model: &ManagerStruct, errors: &mut Errors) {
    let item = &model.item;
    if !item.generics.params.is_empty() || item.generics.where_clause.is_some() {
        errors.error(
            &item.generics,
            "a manager cannot be generic: declare the manager as a unit struct, as in `pub struct AppManager;`",
        );
    }
    if !matches!(item.fields, Fields::Unit) {
        errors.error(
            &item.fields,
            "declare the manager as a unit struct, as in `pub struct AppManager;`: `#[manager]` \
             makes it a handle to the manager process and gives it its fields",
        );
    }
}

/// `#[manager]` on an impl block.
pub(crate) fn manager_impl(model: &mut ManagerImpl, errors: &mut Errors) {
    let item = &model.item;
    if let Some((_, trait_path, _)) = &item.trait_ {
        errors.error(
            trait_path,
            "`#[manager]` goes on the inherent impl block of the manager (`impl AppManager { ... }`)",
        );
    }
    if !item.generics.params.is_empty() {
        errors.error(&item.generics, "a manager cannot be generic");
    }
    if !matches!(crate::ty::ungroup(&item.self_ty), Type::Path(_)) {
        errors.error(&item.self_ty, "`#[manager]` goes on the impl block of a `#[manager]` struct");
    }
    let mut typeids = BTreeSet::new();
    for item in &mut model.items {
        let crate::ast::ManagerItem::Creator(creator) = item else { continue };
        let mut creator_errors = Errors::default();
        if !typeids.insert(creator.typeid.clone()) {
            creator_errors.error_at(
                creator.typeid_span,
                format_args!(
                    "duplicate typeid `{}` in this manager: each creator needs its own (rename the \
                     fn or set `#[manager(typeid = \"...\")]`)",
                    creator.typeid
                ),
            );
        }
        creator_shape(creator, &mut creator_errors);
        creator.ok = creator_errors.is_empty();
        if let Some(e) = creator_errors.into_error() {
            errors.push(e);
        }
    }
}

fn creator_shape(creator: &Creator, errors: &mut Errors) {
    // A creator may have type parameters: the client picks them, the server creates the
    // object with `procman::Opaque` for each (see `procman::Encoded`).
    let mut sig = creator.sig.clone();
    let generics = std::mem::take(&mut sig.generics);
    for param in &generics.params {
        match param {
            GenericParam::Type(_) => {}
            GenericParam::Lifetime(lifetime) => errors.error(
                lifetime,
                "a creator cannot have lifetime parameters: its arguments are decoded into owned values",
            ),
            GenericParam::Const(param) => errors.error(
                param,
                "a creator cannot have const parameters: the manager creates the object without knowing them",
            ),
        }
    }
    plain_fn(&sig, "a creator", errors);
    if let (None, Some(span)) = (&creator.body, creator.helper.singleton) {
        errors.error_at(
            span,
            format_args!(
                "`{SINGLETON}` applies to creators with a body; a fn without body only names a \
                 typeid of a remote manager"
            ),
        );
    }
    for arg in &creator.args {
        if let Err(e) = &arg.kind {
            errors.push(e.clone());
        }
    }
    if let Err(e) = &creator.ret {
        errors.push(e.clone());
    }
}
