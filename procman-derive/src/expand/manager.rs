//! `#[manager]`: the manager handle (on the struct) and the creators (on the impl block).

use super::dispatch::{ProxyArgs, bound, decode_args, proxy_args};
use super::{hidden_ident, ident_at, user_span};
use crate::ast::{Creator, ManagerImpl, ManagerItem, ManagerStruct};
use crate::ctxt::Errors;
use proc_macro2::{Literal, TokenStream};
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Attribute, ImplItemFn, Type};

pub(super) fn expand_struct(model: &ManagerStruct) -> TokenStream {
    let handle = manager_handle(model);
    let builder = manager_builder(model);
    let manager_impl = manager_trait_impl(model);
    let deref = manager_deref(model);
    let debug = manager_debug(model);
    quote! {
        #handle
        const _: () = {
            #builder
            #manager_impl
            #deref
            #debug
        };
    }
}

/// The unit struct, turned into a handle on a manager process.
fn manager_handle(model: &ManagerStruct) -> TokenStream {
    let item = &model.item;
    let (attrs, vis, struct_token, ident) = (&item.attrs, &item.vis, &item.struct_token, &item.ident);
    let base = base_type(model);
    quote! {
        #(#attrs)*
        #vis #struct_token #ident {
            __base: #base,
        }
    }
}

/// What the handle holds and dereferences to: a `SyncManager` for `#[manager(sync)]` (so the
/// built-in creators are its methods, as a Python manager subclasses `SyncManager`), else the
/// untyped `BaseManager`.
fn base_type(model: &ManagerStruct) -> TokenStream {
    match model.args.sync {
        Some(span) => quote_spanned!(span=> ::procman::sync::SyncManager),
        None => quote!(::procman::BaseManager),
    }
}

fn manager_builder(model: &ManagerStruct) -> TokenStream {
    let item = &model.item;
    let (vis, ident) = (&item.vis, &item.ident);
    let doc = format!(
        "Returns a builder for a `{ident}`: set the address and authkey, then `.start()` a \
         manager process, `.connect()` to a running one, or `.serve_forever()` in this process."
    );
    quote! {
        impl #ident {
            #[doc = #doc]
            #[allow(clippy::new_ret_no_self)]
            #[must_use]
            #vis fn new() -> ::procman::ManagerBuilder<Self> {
                ::procman::ManagerBuilder::<Self>::new()
            }
        }
    }
}

fn manager_trait_impl(model: &ManagerStruct) -> TokenStream {
    let ident = &model.item.ident;
    let name = ident.to_string();
    let includes = match model.args.sync {
        Some(span) => quote_spanned!(span=> <::procman::sync::SyncManager as ::procman::Manager>::NAME),
        None => quote!(),
    };
    // `sync` also gives the manager the creators of the built-in types.
    let sync_types = match model.args.sync {
        Some(span) => quote_spanned!(span=>
            #[automatically_derived]
            impl ::procman::sync::SyncTypes for #ident {
                fn sync(&self) -> &::procman::sync::SyncManager {
                    &self.__base
                }
            }
        ),
        None => quote!(),
    };
    let (from_base, base) = match model.args.sync {
        Some(_) => (
            quote!(<::procman::sync::SyncManager as ::procman::Manager>::from_base(base)),
            quote!(::procman::Manager::base(&self.__base)),
        ),
        None => (quote!(base), quote!(&self.__base)),
    };
    quote! {
        #[automatically_derived]
        impl ::procman::Manager for #ident {
            const NAME: &'static ::core::primitive::str =
                ::core::concat!(::core::module_path!(), "::", #name);
            const INCLUDES: &'static [&'static ::core::primitive::str] = &[#includes];

            fn from_base(base: ::procman::BaseManager) -> Self {
                #ident { __base: #from_base }
            }

            fn base(&self) -> &::procman::BaseManager {
                #base
            }
        }

        #sync_types
    }
}

fn manager_deref(model: &ManagerStruct) -> TokenStream {
    let ident = &model.item.ident;
    let base = base_type(model);
    quote! {
        #[automatically_derived]
        impl ::core::clone::Clone for #ident {
            /// Another handle to the same manager; a manager started by `start()` stops when
            /// its last handle is dropped.
            fn clone(&self) -> Self {
                #ident { __base: ::core::clone::Clone::clone(&self.__base) }
            }
        }

        #[automatically_derived]
        impl ::core::ops::Deref for #ident {
            type Target = #base;

            fn deref(&self) -> &#base {
                &self.__base
            }
        }
    }
}

fn manager_debug(model: &ManagerStruct) -> TokenStream {
    let ident = &model.item.ident;
    let name = ident.to_string();
    quote! {
        #[automatically_derived]
        impl ::core::fmt::Debug for #ident {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                f.debug_struct(#name).field("base", &self.__base).finish()
            }
        }
    }
}

pub(super) fn expand_impl(model: &ManagerImpl, errors: &Errors) -> TokenStream {
    let item = &model.item;
    let self_ty = &item.self_ty;
    let mut items = Vec::new();
    for manager_item in &model.items {
        match manager_item {
            ManagerItem::Other(other) => items.push(quote!(#other)),
            ManagerItem::Creator(creator) if creator.ok => {
                if creator.body.is_some() {
                    items.push(creator_body(creator));
                }
                items.push(client_method(creator));
            }
            // A creator with an error keeps its body (so that it is still checked), nothing else.
            ManagerItem::Creator(creator) => {
                if let Some(body) = &creator.body {
                    let f = ImplItemFn {
                        attrs: creator.attrs.clone(),
                        vis: creator.vis.clone(),
                        defaultness: None,
                        sig: creator.sig.clone(),
                        block: body.clone(),
                    };
                    items.push(quote!(#[allow(dead_code)] #f));
                }
            }
        }
    }
    let server: Vec<&Creator> = model.creators().filter(|c| c.ok && c.body.is_some()).collect();
    let trampolines = server.iter().map(|c| trampoline(c));
    let registrations = server.iter().map(|c| registration(c, self_ty));
    let (attrs, impl_token, generics) = (&item.attrs, &item.impl_token, &item.generics);
    let unsafety = &item.unsafety;
    quote! {
        #(#attrs)*
        #unsafety #impl_token #generics #self_ty {
            #(#items)*
        }
        #errors
        const _: () = {
            impl #self_ty {
                #(#trampolines)*
            }
            #(#registrations)*
        };
    }
}

/// The creator's body, kept as a hidden associated fn so that `Self` in it still works.
fn creator_body(creator: &Creator) -> TokenStream {
    let attrs: Vec<&Attribute> = creator
        .attrs
        .iter()
        .filter(|attr| !attr.path().is_ident("doc") && !attr.path().is_ident("deprecated"))
        .collect();
    let mut sig = creator.sig.clone();
    sig.ident = creator.body_ident();
    let body = &creator.body;
    quote! {
        #(#attrs)*
        #[doc(hidden)]
        #sig #body
    }
}

/// The shared type a creator makes, as written.
fn shared_type(creator: &Creator) -> Option<&Type> {
    creator.ret.as_ref().ok().map(|ret| &ret.shared)
}

/// `m.counter(5)`: asks the manager to create a `counter` and returns its proxy.
fn client_method(creator: &Creator) -> TokenStream {
    let Some(shared) = shared_type(creator) else { return quote!() };
    let (forwarded, vis, ident) = (&creator.forwarded, &creator.vis, &creator.sig.ident);
    let typeid = &creator.typeid;
    let buf = hidden_ident("__args");
    let self_ty: Type = syn::parse_quote!(Self);
    let type_params = crate::ty::param_names(&creator.sig.generics);
    let ProxyArgs { params, pushes, mut bounds } = proxy_args(&creator.args, &self_ty, &type_params, &buf);
    // A shared type with a `#[shared]` impl: its description is what the manager checks.
    bounds.push(bound(shared, shared, quote!(::procman::__private::Dispatch)));
    // Each type parameter has a fingerprint: the manager records the client's.
    for param in creator.sig.generics.type_params() {
        let ident = &param.ident;
        bounds.push(quote_spanned!(ident.span()=> #ident: ::procman::Schema));
    }
    let signature = signature(creator, &type_params, |ty| ty.clone());
    if let Some(where_clause) = &creator.sig.generics.where_clause {
        bounds.extend(where_clause.predicates.iter().map(|p| quote!(#p)));
    }
    let mutable = (!pushes.is_empty()).then(|| quote!(mut));
    let proxy = quote!(<#shared as ::procman::Shared>::Proxy);
    let generic_params = &creator.sig.generics.params;
    let generics = (!generic_params.is_empty()).then(|| quote!(<#generic_params>));
    quote! {
        #(#forwarded)*
        #vis fn #ident #generics(&self, #(#params),*) -> ::procman::Result<#proxy>
        where
            #(#bounds),*
        {
            let #mutable #buf = ::procman::__private::ArgsBuf::new();
            #(#pushes)*
            ::procman::__private::create::<#proxy>(::procman::Manager::base(self), #typeid, #buf, #signature)
        }
    }
}

/// The fingerprint of a creator's argument types, as the server decodes them (`erase` turns a
/// generic creator's parameters into `Opaque` on the server's side).
fn signature(
    creator: &Creator,
    type_params: &std::collections::BTreeSet<syn::Ident>,
    erase: impl Fn(&Type) -> Type,
) -> TokenStream {
    let fingerprints = creator.args.iter().map(|arg| {
        let ty = erase(&super::dispatch::decoded_type(arg));
        super::dispatch::fingerprint(&ty, type_params)
    });
    quote!(::procman::__private::signature(::std::vec![#(#fingerprints),*]))
}

/// Decodes the arguments, calls the creator's body and wraps the new object.
fn trampoline(creator: &Creator) -> TokenStream {
    let Some(shared) = shared_type(creator) else { return quote!() };
    // The server creates a generic creator's object with `procman::Opaque` for each parameter.
    let type_params = crate::ty::param_names(&creator.sig.generics);
    let opaque: Type = syn::parse_quote!(::procman::Opaque);
    let erased = |ty: &Type| crate::ty::replace_params(ty, &type_params, &opaque);
    let shared = &erased(shared);
    let server_args: Vec<crate::ast::Arg> = creator
        .args
        .iter()
        .map(|arg| {
            let ty = erased(&arg.ty);
            crate::ast::Arg { name: arg.name.clone(), kind: crate::ty::classify_arg(&ty), ty }
        })
        .collect();
    let turbofish = (!type_params.is_empty()).then(|| {
        let opaques = type_params.iter().map(|_| &opaque);
        quote!(::<#(#opaques),*>)
    });
    let fallible = creator.ret.as_ref().is_ok_and(|ret| ret.fallible);
    let cfgs = &creator.cfgs;
    let (name, body) = (creator.trampoline_ident(), creator.body_ident());
    let typeid = &creator.typeid;
    let (args, reader, value, error) =
        (hidden_ident("__args"), hidden_ident("__reader"), hidden_ident("__value"), hidden_ident("__error"));
    let (decode, pass) = decode_args(&server_args, &reader);
    let mutable = (!creator.args.is_empty()).then(|| quote!(mut));
    let unwrap = fallible.then(|| {
        let output = &creator.sig.output;
        let error_at = ident_at(&error, output.span());
        let into_error = quote_spanned!(user_span(output.span())=> ::procman::__private::into_error(#error_at));
        quote! {
            let #value = match #value {
                ::core::result::Result::Ok(#value) => #value,
                ::core::result::Result::Err(#error) => return ::core::result::Result::Err(#into_error),
            };
        }
    });
    let value_at = ident_at(&value, shared.span());
    let object = quote_spanned! {user_span(shared.span())=> {
        #[allow(unused_imports)]
        use ::procman::__private::{IntoObject as _, IntoObjectUnchecked as _};
        (&&&::procman::__private::Probe::<#shared>::new()).procman_object(#value_at)
    }};
    let signature_ident = creator.signature_ident();
    let signature = signature(creator, &Default::default(), |ty| erased(ty));
    let describe_ident = creator.describe_ident();
    quote! {
        #(#cfgs)*
        #[doc(hidden)]
        fn #signature_ident() -> ::procman::__private::Signature {
            #signature
        }

        #(#cfgs)*
        #[doc(hidden)]
        fn #describe_ident() -> ::std::sync::Arc<::procman::__private::TypeDesc> {
            #[allow(unused_imports)]
            use ::procman::__private::{DescribeOf as _, DescribeUnchecked as _};
            (&&&::procman::__private::Probe::<#shared>::new()).procman_describe()
        }

        #(#cfgs)*
        #[doc(hidden)]
        fn #name(#args: &[::core::primitive::u8]) -> ::procman::Result<::procman::__private::Object> {
            let #mutable #reader = ::procman::__private::ArgsReader::new(#args, #typeid);
            #(#decode)*
            #reader.finish()?;
            let #value = Self::#body #turbofish(#(#pass),*);
            #unwrap
            #object
        }
    }
}

/// The inventory entry through which a manager process finds the creator.
fn registration(creator: &Creator, self_ty: &Type) -> TokenStream {
    if shared_type(creator).is_none() {
        return quote!();
    }
    let cfgs = &creator.cfgs;
    let typeid = &creator.typeid;
    let trampoline = creator.trampoline_ident();
    let (describe_ident, signature_ident) = (creator.describe_ident(), creator.signature_ident());
    let singleton = creator.helper.singleton.is_some();
    // The line of the creator's name: `line!()` would give the line of `#[manager]`.
    let line = match creator.sig.ident.span().start().line {
        0 => quote!(::core::line!()),
        line => {
            let line = Literal::u32_suffixed(u32::try_from(line).unwrap_or(u32::MAX));
            quote!(#line)
        }
    };
    quote! {
        #(#cfgs)*
        ::procman::__private::inventory::submit! {
            ::procman::__private::CreatorEntry {
                manager: <#self_ty as ::procman::Manager>::NAME,
                typeid: #typeid,
                create: <#self_ty>::#trampoline,
                singleton: #singleton,
                describe: <#self_ty>::#describe_ident,
                signature: <#self_ty>::#signature_ident,
                file: ::core::file!(),
                line: #line,
            }
        }
    }
}
