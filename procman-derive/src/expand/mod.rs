//! Code generation, one generator fn per emitted item, composed here.
//!
//! Generated code names only absolute paths (`::procman::…`, `::core::…`, `::std::…`), keeps
//! what users need not name inside `const _: () = { … };`, and uses `Span::mixed_site()` for
//! its local variables so that they never meet the user's names.

mod derive;
mod dispatch;
mod manager;
mod mirror;
mod schema;

use crate::ast::{ManagerImpl, ManagerStruct, SharedImpl, SharedType};
use crate::ctxt::Errors;
use crate::{attr, valid};
use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, quote};
use syn::{Ident, Item};

/// `#[derive(Shared)]`.
pub(crate) fn derive_shared(input: &syn::DeriveInput) -> syn::Result<TokenStream> {
    let mut errors = Errors::default();
    let model = SharedType::from_syn(input);
    valid::shared_type(&model, &mut errors);
    if let Some(error) = errors.into_error() {
        return Err(error);
    }
    Ok(derive::expand(&model))
}

/// `#[derive(Schema)]`.
pub(crate) fn derive_schema(input: &syn::DeriveInput) -> syn::Result<TokenStream> {
    schema::expand(input)
}

/// `#[shared]`.
pub(crate) fn shared(args: TokenStream, input: TokenStream) -> syn::Result<TokenStream> {
    let mut errors = Errors::default();
    let item: Item = syn::parse2(input)?;
    let Item::Impl(item) = item else {
        errors.error(
            item_head(&item),
            "`#[shared]` goes on the inherent impl block of a shared type (`impl Foo { ... }`); put \
             `#[derive(Shared)]` on the type itself",
        );
        return Ok(quote!(#item #errors));
    };
    let args = attr::impl_args(args, &mut errors);
    let mut model = SharedImpl::from_syn(item, args, &mut errors);
    valid::shared_impl(&mut model, &mut errors);
    Ok(dispatch::expand(&model, &errors))
}

/// `#[manager]`: on the manager struct or on its impl block.
pub(crate) fn manager(args: TokenStream, input: TokenStream) -> syn::Result<TokenStream> {
    let mut errors = Errors::default();
    match syn::parse2(input)? {
        Item::Struct(item) => {
            let args = attr::manager_args(args, &mut errors);
            let model = ManagerStruct::from_syn(item, args);
            valid::manager_struct(&model, &mut errors);
            if !model.item.generics.params.is_empty() {
                // The struct as written, so that its uses still resolve.
                let item = &model.item;
                return Ok(quote!(#item #errors));
            }
            // The handle even after an error (its fields are replaced anyway), so that the
            // manager's impl block and uses give no further errors.
            let expanded = manager::expand_struct(&model);
            Ok(quote!(#errors #expanded))
        }
        Item::Impl(item) => {
            attr::manager_impl_args(args, &mut errors);
            let mut model = ManagerImpl::from_syn(item, &mut errors);
            valid::manager_impl(&mut model, &mut errors);
            Ok(manager::expand_impl(&model, &errors))
        }
        item => {
            errors.error(
                item_head(&item),
                "`#[manager]` goes on a unit struct (`pub struct AppManager;`) or on its impl block",
            );
            Ok(quote!(#item #errors))
        }
    }
}

/// `#[procman::main]`.
pub(crate) fn main(args: TokenStream, input: TokenStream) -> syn::Result<TokenStream> {
    let mut item: syn::ItemFn = syn::parse2(input)?;
    let mut errors = Errors::default();
    if !args.is_empty() {
        errors.error(&args, "`#[procman::main]` takes no options");
    }
    let init: syn::Stmt = syn::parse_quote!(::procman::init(););
    item.block.stmts.insert(0, init);
    Ok(quote!(#errors #item))
}

/// The first tokens of an item (its keyword and name), where "wrong item" errors point.
fn item_head(item: &Item) -> TokenStream {
    match item {
        Item::Struct(s) => {
            let (token, ident) = (&s.struct_token, &s.ident);
            quote!(#token #ident)
        }
        Item::Enum(e) => {
            let (token, ident) = (&e.enum_token, &e.ident);
            quote!(#token #ident)
        }
        Item::Fn(f) => {
            let (token, ident) = (&f.sig.fn_token, &f.sig.ident);
            quote!(#token #ident)
        }
        Item::Trait(t) => {
            let (token, ident) = (&t.trait_token, &t.ident);
            quote!(#token #ident)
        }
        other => other.to_token_stream(),
    }
}

/// A name for a local variable of generated code: invisible to the user's code.
fn hidden_ident(name: &str) -> Ident {
    Ident::new(name, Span::mixed_site())
}

/// A span located at the user's `span` (where errors point) with the hygiene of generated
/// code. Every token of a checked expression gets it: rustc reports an expression over its
/// first and last tokens, and tokens of different hygiene would widen that to the attribute.
fn user_span(span: Span) -> Span {
    Span::mixed_site().located_at(span)
}

/// The same local, located at `span` (for errors) and resolved as before.
fn ident_at(local: &Ident, span: Span) -> Ident {
    Ident::new(&local.to_string(), local.span().located_at(span))
}
