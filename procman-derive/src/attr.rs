//! The helper attributes: `#[shared(...)]` and `#[manager(...)]`, on items and on methods.
//!
//! Every parser records its errors in [`Errors`] and goes on, so that one pass reports every
//! mistake: a duplicate key errors at the second occurrence, an unknown key at the key.

use crate::ctxt::Errors;
use crate::symbol::{
    CLIENT, EXPOSED, MANAGER, ON_DISCONNECT, PROXY, RENAME, SHARED, SINGLETON, SKIP, SYNC, TYPEID, UNDO,
};
use proc_macro2::{Span, TokenStream};
use syn::meta::ParseNestedMeta;
use syn::parse::Parser;
use syn::spanned::Spanned;
use syn::{Attribute, Ident, LitStr, Token};

/// `#[shared(...)]` on an impl block.
#[derive(Default)]
pub(crate) struct ImplArgs {
    /// `exposed(a, b)`: exactly these methods are exposed.
    pub(crate) exposed: Option<Vec<Ident>>,
}

/// `#[shared(...)]` on a method. Each flag keeps the span of its key.
#[derive(Default)]
pub(crate) struct MethodAttrs {
    pub(crate) skip: Option<Span>,
    pub(crate) proxy: Option<Span>,
    pub(crate) on_disconnect: Option<Span>,
    /// `client`: the method runs in the caller's process, on the proxy.
    pub(crate) client: Option<Span>,
    /// `rename = "..."`: the method's name on the wire.
    pub(crate) rename: Option<LitStr>,
    /// `undo = method`: the exposed method that takes the result back when the caller of the
    /// async proxy method has gone.
    pub(crate) undo: Option<Undo>,
}

/// `undo = method` on a method.
pub(crate) struct Undo {
    /// The method named.
    pub(crate) method: Ident,
    /// `undo = method` as written, where its errors point.
    pub(crate) tokens: TokenStream,
}

/// `#[manager(...)]` on a manager struct.
#[derive(Default)]
pub(crate) struct ManagerArgs {
    /// `sync`: the manager also serves the built-in types of `SyncManager`.
    pub(crate) sync: Option<Span>,
}

/// `#[manager(...)]` on a creator fn.
#[derive(Default)]
pub(crate) struct CreatorAttrs {
    pub(crate) typeid: Option<LitStr>,
    pub(crate) singleton: Option<Span>,
}

/// Parses the arguments of `#[shared(...)]` on an impl block.
pub(crate) fn impl_args(args: TokenStream, errors: &mut Errors) -> ImplArgs {
    let mut out = ImplArgs::default();
    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident(EXPOSED) {
            if out.exposed.is_some() {
                errors.push(meta.error(format_args!("duplicate `{EXPOSED}`")));
                return skip_value(&meta);
            }
            let mut names: Vec<Ident> = Vec::new();
            meta.parse_nested_meta(|name| {
                match name.path.get_ident() {
                    Some(ident) if at_end_of_entry(&name) => {
                        if names.iter().any(|seen| seen == ident) {
                            errors.error(ident, format_args!("`{ident}` is already in `{EXPOSED}(...)`"));
                        } else {
                            names.push(ident.clone());
                        }
                    }
                    _ => {
                        errors.push(name.error("expected a method name, as in `exposed(get, set)`"));
                        skip_value(&name)?;
                    }
                }
                Ok(())
            })?;
            out.exposed = Some(names);
            Ok(())
        } else {
            let hint = if is_method_key(&meta) { "; it goes on a method, not on the impl block" } else { "" };
            unknown_key(&meta, errors, SHARED, &[EXPOSED], hint)
        }
    });
    if let Err(e) = parser.parse2(args) {
        errors.push(e);
    }
    out
}

fn is_method_key(meta: &ParseNestedMeta<'_>) -> bool {
    [SKIP, PROXY, ON_DISCONNECT, CLIENT, RENAME, UNDO].iter().any(|key| meta.path.is_ident(key))
}

/// Takes the `#[shared(...)]` attributes out of `attrs` and parses them.
pub(crate) fn method_attrs(attrs: &mut Vec<Attribute>, errors: &mut Errors) -> MethodAttrs {
    let mut out = MethodAttrs::default();
    for attr in take_helper_attrs(attrs, SHARED) {
        let result = attr.parse_nested_meta(|meta| {
            if meta.path.is_ident(RENAME) {
                if out.rename.is_some() {
                    errors.push(meta.error(format_args!("duplicate `{RENAME}`")));
                    return skip_value(&meta);
                }
                let value: LitStr = meta.value()?.parse()?;
                if value.value().is_empty() {
                    errors.error(&value, "a method's wire name cannot be empty");
                }
                out.rename = Some(value);
                return Ok(());
            }
            if meta.path.is_ident(UNDO) {
                if out.undo.is_some() {
                    errors.push(meta.error(format_args!("duplicate `{UNDO}`")));
                    return skip_value(&meta);
                }
                let key = meta.path.clone();
                let eq: Token![=] = match meta.input.parse() {
                    Ok(eq) => eq,
                    Err(_) => {
                        errors.push(meta.error(format_args!(
                            "`{UNDO}` names the method that takes the result back, as in `{UNDO} = put`"
                        )));
                        return skip_value(&meta);
                    }
                };
                let value: syn::Expr = meta.input.parse()?;
                match &value {
                    syn::Expr::Path(path) if path.attrs.is_empty() && path.qself.is_none() => {
                        if let Some(method) = path.path.get_ident() {
                            let tokens = quote::quote!(#key #eq #method);
                            out.undo = Some(Undo { method: method.clone(), tokens });
                            return Ok(());
                        }
                    }
                    _ => {}
                }
                errors.error(
                    &value,
                    format_args!("expected the name of a method of this impl block, as in `{UNDO} = put`"),
                );
                return Ok(());
            }
            let slot = if meta.path.is_ident(SKIP) {
                &mut out.skip
            } else if meta.path.is_ident(PROXY) {
                &mut out.proxy
            } else if meta.path.is_ident(ON_DISCONNECT) {
                &mut out.on_disconnect
            } else if meta.path.is_ident(CLIENT) {
                &mut out.client
            } else {
                let hint = if meta.path.is_ident(EXPOSED) { "; `exposed(...)` goes on the impl block" } else { "" };
                return unknown_key(&meta, errors, SHARED, &[SKIP, PROXY, ON_DISCONNECT, CLIENT, RENAME, UNDO], hint);
            };
            flag(slot, &meta, errors)
        });
        errors.ok(result);
    }
    out
}

/// Parses the arguments of `#[manager(...)]` on a manager struct.
pub(crate) fn manager_args(args: TokenStream, errors: &mut Errors) -> ManagerArgs {
    let mut out = ManagerArgs::default();
    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident(SYNC) {
            flag(&mut out.sync, &meta, errors)
        } else {
            let hint = if meta.path.is_ident(TYPEID) || meta.path.is_ident(SINGLETON) {
                "; it goes on a creator fn in the `#[manager]` impl block"
            } else {
                ""
            };
            unknown_key(&meta, errors, MANAGER, &[SYNC], hint)
        }
    });
    if let Err(e) = parser.parse2(args) {
        errors.push(e);
    }
    out
}

/// Checks that `#[manager]` on an impl block has no arguments.
pub(crate) fn manager_impl_args(args: TokenStream, errors: &mut Errors) {
    let parser = syn::meta::parser(|meta| {
        let hint = if meta.path.is_ident(SYNC) {
            "; `sync` goes on the manager struct"
        } else if meta.path.is_ident(TYPEID) || meta.path.is_ident(SINGLETON) {
            "; it goes on a creator fn inside the impl block"
        } else {
            ""
        };
        errors.push(meta.error(format_args!("`#[{MANAGER}]` on an impl block takes no options{hint}")));
        skip_value(&meta)
    });
    if let Err(e) = parser.parse2(args) {
        errors.push(e);
    }
}

/// Takes the `#[manager(...)]` attributes out of a creator's `attrs` and parses them.
pub(crate) fn creator_attrs(attrs: &mut Vec<Attribute>, errors: &mut Errors) -> CreatorAttrs {
    let mut out = CreatorAttrs::default();
    for attr in take_helper_attrs(attrs, MANAGER) {
        let result = attr.parse_nested_meta(|meta| {
            if meta.path.is_ident(TYPEID) {
                if out.typeid.is_some() {
                    errors.push(meta.error(format_args!("duplicate `{TYPEID}`")));
                    return skip_value(&meta);
                }
                let value: LitStr = meta.value()?.parse()?;
                if value.value().is_empty() {
                    errors.error(&value, "a typeid cannot be empty");
                }
                out.typeid = Some(value);
                Ok(())
            } else if meta.path.is_ident(SINGLETON) {
                flag(&mut out.singleton, &meta, errors)
            } else {
                let hint = if meta.path.is_ident(SYNC) { "; `sync` goes on the manager struct" } else { "" };
                unknown_key(&meta, errors, MANAGER, &[TYPEID, SINGLETON], hint)
            }
        });
        errors.ok(result);
    }
    out
}

/// Removes and returns the attributes named `name` (or `procman::name`) from `attrs`.
pub(crate) fn take_helper_attrs(attrs: &mut Vec<Attribute>, name: &str) -> Vec<Attribute> {
    let (ours, theirs) = std::mem::take(attrs).into_iter().partition(|attr| is_helper(attr, name));
    *attrs = theirs;
    ours
}

/// `#[name(...)]`, `#[procman::name(...)]`, or `#[crate::name(...)]` inside procman itself.
pub(crate) fn is_helper(attr: &Attribute, name: &str) -> bool {
    let segments = &attr.path().segments;
    match segments.len() {
        1 => segments[0].ident == name,
        2 => (segments[0].ident == "procman" || segments[0].ident == "crate") && segments[1].ident == name,
        _ => false,
    }
}

/// The attributes forwarded from a method to its proxy twin: `cfg`, docs and `deprecated`.
pub(crate) fn forwarded(attrs: &[Attribute]) -> Vec<Attribute> {
    let keep = ["cfg", "doc", "deprecated"];
    attrs.iter().filter(|attr| keep.iter().any(|name| attr.path().is_ident(name))).cloned().collect()
}

/// The `cfg` attributes of an item: every generated twin of the item carries them.
pub(crate) fn cfgs(attrs: &[Attribute]) -> Vec<Attribute> {
    attrs.iter().filter(|attr| attr.path().is_ident("cfg")).cloned().collect()
}

/// Sets a flag that takes no value; a second occurrence is an error at the second key.
fn flag(slot: &mut Option<Span>, meta: &ParseNestedMeta<'_>, errors: &mut Errors) -> syn::Result<()> {
    let key = path_name(meta);
    if slot.is_some() {
        errors.push(meta.error(format_args!("duplicate `{key}`")));
    } else {
        *slot = Some(meta.path.span());
    }
    if !at_end_of_entry(meta) {
        errors.push(meta.error(format_args!("`{key}` takes no value")));
        skip_value(meta)?;
    }
    Ok(())
}

fn unknown_key(
    meta: &ParseNestedMeta<'_>,
    errors: &mut Errors,
    attr: &str,
    expected: &[&str],
    hint: &str,
) -> syn::Result<()> {
    let expected = match expected {
        [one] => format!("`{one}`"),
        [init @ .., last] => {
            let init: Vec<String> = init.iter().map(|k| format!("`{k}`")).collect();
            format!("{} or `{last}`", init.join(", "))
        }
        [] => "nothing".to_owned(),
    };
    errors
        .error(&meta.path, format_args!("unknown `#[{attr}]` option `{}`{hint}; expected {expected}", path_name(meta)));
    skip_value(meta)
}

fn path_name(meta: &ParseNestedMeta<'_>) -> String {
    let segments: Vec<String> = meta.path.segments.iter().map(|s| s.ident.to_string()).collect();
    segments.join("::")
}

fn at_end_of_entry(meta: &ParseNestedMeta<'_>) -> bool {
    meta.input.is_empty() || meta.input.peek(Token![,])
}

/// Consumes whatever follows a key (`= expr` or `(...)`), so that parsing can go on.
pub(crate) fn skip_value(meta: &ParseNestedMeta<'_>) -> syn::Result<()> {
    if meta.input.peek(Token![=]) {
        meta.value()?.parse::<syn::Expr>()?;
    } else if meta.input.peek(syn::token::Paren) {
        let content;
        syn::parenthesized!(content in meta.input);
        content.parse::<TokenStream>()?;
    }
    Ok(())
}
