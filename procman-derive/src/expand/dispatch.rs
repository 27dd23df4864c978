//! `#[shared]`: the server's dispatch table (`impl Dispatch`), the proxy's methods and their
//! async twins on the async proxy.
//!
//! Each travelling type gives at most one error, at the user's type. The proxy method checks
//! one trait per type with a where clause spanned over the type (`where File: Serialize` for an
//! argument, `where R: DeserializeOwned` for a result). The server side decodes and encodes
//! through `Probe` autoref specialization, which fails to compile only when the type passed the
//! proxy-side check but lacks the other trait. For types that name the impl's parameters the
//! bounds are real bounds (`T: Wire`), on the proxy method and on `impl Dispatch`.

use super::{hidden_ident, ident_at, user_span};
use crate::ast::{Arg, Method, Receiver, SharedImpl};
use crate::ctxt::Errors;
use crate::ty::{self, ArgKind, Ret};
use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, quote, quote_spanned};
use std::collections::BTreeSet;
use syn::spanned::Spanned;
use syn::visit_mut::VisitMut;
use syn::{GenericParam, Ident, Type, WherePredicate};

pub(super) fn expand(model: &SharedImpl, errors: &Errors) -> TokenStream {
    let item = &model.item;
    let has_lifetimes = item.generics.params.iter().any(|p| matches!(p, GenericParam::Lifetime(_)));
    let Some(proxy_ty) = &model.proxy_ty else { return quote!(#item #errors) };
    if item.trait_.is_some() || has_lifetimes {
        return quote!(#item #errors);
    }
    let dispatch = dispatch_table(model);
    let proxy = proxy_methods(model, proxy_ty);
    let async_proxy = model.async_proxy_ty.as_ref().map(|async_ty| async_proxy_methods(model, proxy_ty, async_ty));
    quote! {
        #item
        #errors
        const _: () = {
            #dispatch
            #proxy
            #async_proxy
        };
    }
}

/// `impl Dispatch for Foo`: the exposed names, the `call` match, `repr`, `encode_value`,
/// `state` and `connection_closed`.
fn dispatch_table(model: &SharedImpl) -> TokenStream {
    let item = &model.item;
    let self_ty = &item.self_ty;
    let params = ty::param_names(&item.generics);
    let mut generics = item.generics.clone();
    let where_clause = generics.make_where_clause();
    // At the self type: a type without `#[derive(Shared)]` is reported there.
    where_clause.predicates.push(syn::parse_quote_spanned!(self_ty.span()=> Self: ::procman::Shared));
    where_clause.predicates.extend(inferred_server_bounds(model, &params));
    let (impl_generics, _, where_clause) = generics.split_for_impl();

    let names = model.exposed().map(|m| {
        let cfgs = &m.cfgs;
        let name = m.wire_name();
        quote!(#(#cfgs)* #name)
    });
    let arms = model.exposed().map(dispatch_arm);
    let on_disconnect = model.on_disconnect().map(connection_closed);
    let method_descs = model.exposed().map(|m| method_desc(m, &params));
    let const_params: BTreeSet<Ident> = item.generics.const_params().map(|c| c.ident.clone()).collect();
    let param_descs = param_descs(self_ty, &params, &const_params);
    let (this, method, args, cx) =
        (hidden_ident("__this"), hidden_ident("__method"), hidden_ident("__args"), hidden_ident("__cx"));
    // The impl is spanned at the self type: a type without `#[derive(Shared)]` is reported there.
    let dispatch_trait = quote_spanned!(self_ty.span()=> ::procman::__private::Dispatch);
    quote! {
        #[automatically_derived]
        impl #impl_generics #dispatch_trait for #self_ty #where_clause {
            const EXPOSED: &'static [&'static ::core::primitive::str] = &[#(#names),*];

            fn call(
                #this: &::procman::__private::Referent<Self>,
                #method: &::core::primitive::str,
                #args: &[::core::primitive::u8],
                #cx: &mut ::procman::__private::CallCx<'_>,
            ) -> ::procman::Result<::std::vec::Vec<::core::primitive::u8>> {
                match #method {
                    #(#arms)*
                    _ => ::core::result::Result::Err(::procman::__private::not_exposed::<Self>(#method)),
                }
            }

            fn repr(#this: &Self) -> ::std::string::String {
                use ::procman::__private::{ReprDebug as _, ReprName as _};
                (&&::procman::__private::ReprProbe(#this)).procman_repr()
            }

            fn encode_value(#this: &Self) -> ::procman::Result<::std::vec::Vec<::core::primitive::u8>> {
                use ::procman::__private::{ValueOpaque as _, ValueSerialize as _};
                (&&::procman::__private::ValueProbe(#this)).procman_encode_value()
            }

            fn state(
                #this: &::procman::__private::Referent<Self>,
            ) -> ::core::option::Option<::procman::__private::ObjectState> {
                use ::procman::__private::{StateInspect as _, StateNone as _};
                (&&::procman::__private::StateProbe(#this)).procman_state()
            }

            #on_disconnect

            fn methods() -> ::std::vec::Vec<::procman::__private::MethodDesc> {
                ::std::vec![#(#method_descs),*]
            }

            fn params() -> ::std::vec::Vec<::procman::__private::ParamDesc> {
                ::std::vec![#(#param_descs),*]
            }
        }
    }
}

/// The fingerprint and name of a travelling type: directly for a type that names the impl's
/// parameters (its bound is inferred), through the probe otherwise (a type without `Schema` is
/// reported on the proxy's method, once).
pub(super) fn fingerprint(ty: &Type, params: &BTreeSet<Ident>) -> TokenStream {
    if ty::mentions(ty, params) {
        quote!(::procman::__private::fingerprint::<#ty>())
    } else {
        quote! {{
            #[allow(unused_imports)]
            use ::procman::__private::{FingerprintOf as _, FingerprintUnknown as _};
            (&&&::procman::__private::Probe::<#ty>::new()).procman_fingerprint()
        }}
    }
}

/// `MethodDesc::new(...)` for one exposed method.
fn method_desc(method: &Method, params: &BTreeSet<Ident>) -> TokenStream {
    let name = method.wire_name();
    let cfgs = &method.cfgs;
    let args = method.args.iter().map(|arg| fingerprint(&decoded_type(arg), params));
    let ret = method.ret.as_ref().map_or(Ret::Unit, Ret::clone);
    let ret = match ret.ok_type() {
        None => quote!(::procman::__private::fingerprint::<()>()),
        Some(ok) if method.attrs.proxy.is_some() => quote!(::procman::__private::proxy_fingerprint::<#ok>()),
        Some(ok) => fingerprint(&ty::owned(ok), params),
    };
    quote! {
        #(#cfgs)*
        ::procman::__private::MethodDesc::new(#name, ::std::vec![#(#args),*], #ret)
    }
}

/// `ParamDesc { ... }` for each type argument of the self type (`T` of `Queue<T>`).
fn param_descs(self_ty: &Type, params: &BTreeSet<Ident>, const_params: &BTreeSet<Ident>) -> Vec<TokenStream> {
    let Type::Path(path) = ty::ungroup(self_ty) else { return Vec::new() };
    let Some(last) = path.path.segments.last() else { return Vec::new() };
    let syn::PathArguments::AngleBracketed(args) = &last.arguments else { return Vec::new() };
    args.args
        .iter()
        .filter_map(|arg| match arg {
            // A const parameter reads as a type path: it is no type.
            syn::GenericArgument::Type(Type::Path(p))
                if p.path.get_ident().is_some_and(|i| const_params.contains(i)) =>
            {
                None
            }
            syn::GenericArgument::Type(ty) => Some(ty),
            _ => None,
        })
        .map(|ty| {
            let name = ty.to_token_stream().to_string();
            let fp = fingerprint(ty, params);
            quote!(::procman::__private::ParamDesc::new(#name, #fp))
        })
        .collect()
}

/// For types that name the impl's parameters, the bounds the server needs
/// (`T: Wire` for `fn push(&self, item: T)`): with them, `Foo<T>: Dispatch` holds exactly for
/// the `T` that can travel.
fn inferred_server_bounds(model: &SharedImpl, params: &BTreeSet<Ident>) -> Vec<WherePredicate> {
    let mut bounds = Vec::new();
    // Every type parameter has a fingerprint: the manager compares it with the client's.
    for param in model.item.generics.type_params() {
        let ident = &param.ident;
        bounds.push(syn::parse_quote!(#ident: ::procman::Schema));
    }
    for method in model.exposed() {
        for arg in &method.args {
            let decoded = decoded_type(arg);
            if ty::mentions(&decoded, params) {
                bounds.push(syn::parse_quote!(#decoded: ::procman::__private::Wire));
            }
        }
        let Ok(ret) = &method.ret else { continue };
        if let Some(ok) = ret.ok_type() {
            if method.attrs.proxy.is_some() {
                if ty::mentions(ok, params) {
                    bounds.push(syn::parse_quote!(#ok: ::procman::__private::Dispatch));
                }
            } else {
                let owned = ty::owned(ok);
                if ty::mentions(&owned, params) {
                    bounds.push(syn::parse_quote!(#owned: ::procman::__private::Wire));
                }
            }
        }
    }
    bounds
}

fn kind(arg: &Arg) -> &ArgKind {
    // Only arguments of validated methods are expanded.
    arg.kind.as_ref().unwrap_or(&ArgKind::Owned)
}

/// The type the server decodes for an argument.
pub(super) fn decoded_type(arg: &Arg) -> Type {
    match kind(arg) {
        ArgKind::Str => syn::parse_quote_spanned!(arg.ty.span()=> ::std::string::String),
        ArgKind::Slice(elem) => syn::parse_quote_spanned!(arg.ty.span()=> ::std::vec::Vec<#elem>),
        ArgKind::Ref(elem) => elem.clone(),
        ArgKind::Owned => arg.ty.clone(),
    }
}

/// The server side of each argument: `let __a0 = <decode>?;` and what is passed to the method.
pub(super) fn decode_args(args: &[Arg], reader: &Ident) -> (Vec<TokenStream>, Vec<TokenStream>) {
    let mut decode = Vec::new();
    let mut pass = Vec::new();
    for (i, arg) in args.iter().enumerate() {
        let value = hidden_ident(&format!("__a{i}"));
        let decoded = decoded_type(arg);
        let reader = ident_at(reader, arg.ty.span());
        if let Some(read) = byte_arg(&arg.ty).map(|shape| read_bytes(&shape, &reader)) {
            decode.push(quote!(let #value = #read;));
        } else {
            decode.push(quote_spanned! {user_span(arg.ty.span())=>
            let #value = {
                #[allow(unused_imports)]
                use ::procman::__private::{DecodeArg as _, DecodeArgNotDeserialize as _, DecodeArgUnchecked as _};
                (&&::procman::__private::Probe::<#decoded>::new()).procman_next(&mut #reader)
            }?;
            });
        }
        pass.push(match kind(arg) {
            ArgKind::Str | ArgKind::Ref(_) => quote!(&#value),
            ArgKind::Slice(_) => quote!(&#value[..]),
            ArgKind::Owned => quote!(#value),
        });
    }
    (decode, pass)
}

/// The byte shape of an argument: `Vec<u8>`, `&[u8]`, `[u8; N]`, `Option<Vec<u8>>`.
fn byte_arg(ty: &Type) -> Option<ty::ByteShape> {
    ty::byte_shape(ty).filter(|shape| !matches!(shape, ty::ByteShape::ResultVec(_)))
}

/// Reads an argument of byte shape `shape` from `reader`, as the type the method takes (a
/// `&[u8]` is read as the `Vec<u8>` it borrows from).
fn read_bytes(shape: &ty::ByteShape, reader: &Ident) -> TokenStream {
    let private = quote!(::procman::__private);
    match shape {
        ty::ByteShape::Vec | ty::ByteShape::ResultVec(_) => {
            quote!(#reader.next_arg::<#private::ByteBuf>()?.into_vec())
        }
        ty::ByteShape::OptVec => quote! {
            #reader.next_arg::<::core::option::Option<#private::ByteBuf>>()?.map(#private::ByteBuf::into_vec)
        },
        ty::ByteShape::Array(len) => quote!(#reader.next_arg::<#private::ByteArray<{ #len }>>()?.0),
    }
}

/// Pushes `value`, an argument of byte shape `shape` (a place expression of the argument's
/// type), as a byte string; the `last` argument's bytes stay where they lie until the call
/// writes them (see `ArgsBuf::push_last_bytes`).
fn push_bytes(shape: &ty::ByteShape, buf: &Ident, value: &Ident, last: bool) -> TokenStream {
    let private = quote!(::procman::__private);
    match shape {
        ty::ByteShape::OptVec => quote! {
            #buf.push(&::core::option::Option::as_deref(&#value).map(#private::ByteArg))?;
        },
        _ if last => quote!(#buf.push_last_bytes(&#value[..])?;),
        _ => quote!(#buf.push(&#private::ByteArg(&#value[..]))?;),
    }
}

/// The proxy side of each argument: the parameter, the push into the buffer, and the bound
/// that checks, at the user's type, that the type can travel.
pub(super) struct ProxyArgs {
    pub(super) params: Vec<TokenStream>,
    pub(super) pushes: Vec<TokenStream>,
    pub(super) bounds: Vec<TokenStream>,
}

pub(super) fn proxy_args(args: &[Arg], self_ty: &Type, params: &BTreeSet<Ident>, buf: &Ident) -> ProxyArgs {
    // A concrete type gets one bound per trait, so a type that has `Serialize` but no
    // fingerprint is one error that says to derive `Schema`.
    let check = |ty: &Type, at: &Type| {
        if ty::mentions(ty, params) {
            wire_bound(ty, at)
        } else {
            let serialize = bound(ty, at, quote!(::procman::__private::serde::Serialize));
            let schema = bound(ty, at, quote!(::procman::Schema));
            quote!(#serialize, #schema)
        }
    };
    let mut out = ProxyArgs { params: Vec::new(), pushes: Vec::new(), bounds: Vec::new() };
    for (i, arg) in args.iter().enumerate() {
        let name = &arg.name;
        let ty = ty::replace_self(&arg.ty, self_ty);
        let span = arg.ty.span();
        let elem = match kind(arg) {
            ArgKind::Str => None,
            ArgKind::Slice(elem) | ArgKind::Ref(elem) => Some(elem),
            ArgKind::Owned => Some(&arg.ty),
        };
        if let Some(shape) = byte_arg(&arg.ty) {
            // Sent as one byte string: the type is concrete, nothing to check.
            out.params.push(quote!(#name: #ty));
            out.pushes.push(push_bytes(&shape, &ident_at(buf, span), name, i + 1 == args.len()));
            continue;
        }
        if let Some(elem) = elem.filter(|elem| ty::mentions_encoded(elem)) {
            // `Encoded<X>` in the server's signature: the proxy takes an `X` and encodes it.
            let form = ty::replace_self(elem, self_ty);
            let client = ty::client_type(&form);
            // With the `Client` named: a bare `Form` bound would hide the impl that says what
            // the client type is.
            out.bounds.push(bound(&form, &arg.ty, quote!(::procman::__private::Form<Client = #client>)));
            let buf = ident_at(buf, span);
            let (param, push) = match kind(arg) {
                ArgKind::Owned => (
                    quote!(#client),
                    quote_spanned!(span=> #buf.push::<#form>(&<#form as ::procman::__private::Form>::from_client(&#name)?)?;),
                ),
                ArgKind::Ref(_) => (
                    quote!(&#client),
                    quote_spanned!(span=> #buf.push::<#form>(&<#form as ::procman::__private::Form>::from_client(#name)?)?;),
                ),
                _ => (quote!(&[#client]), quote_spanned!(span=> #buf.push_forms::<#form>(#name)?;)),
            };
            out.params.push(quote!(#name: #param));
            out.pushes.push(push);
            continue;
        }
        out.params.push(quote!(#name: #ty));
        let (pushed, value) = match kind(arg) {
            ArgKind::Str => (quote_spanned!(span=> ::core::primitive::str), quote!(#name)),
            ArgKind::Slice(elem) => {
                let elem = ty::replace_self(elem, self_ty);
                out.bounds.push(check(&elem, &arg.ty));
                (quote!([#elem]), quote!(#name))
            }
            ArgKind::Ref(elem) => {
                let elem = ty::replace_self(elem, self_ty);
                out.bounds.push(check(&elem, &arg.ty));
                (elem.into_token_stream(), quote!(#name))
            }
            ArgKind::Owned => {
                out.bounds.push(check(&ty, &arg.ty));
                (ty.into_token_stream(), quote!(&#name))
            }
        };
        let buf = ident_at(buf, span);
        out.pushes.push(quote_spanned!(span=> #buf.push::<#pushed>(#value)?;));
    }
    out
}

/// `ty: ::procman::__private::Wire`, spanned so that rustc reports it over the user's type
/// `at` (from its first token to its last).
pub(super) fn wire_bound(ty: &Type, at: &Type) -> TokenStream {
    bound(ty, at, quote!(::procman::__private::Wire))
}

/// `ty: trait_path`, spanned over the user's tokens `at`.
pub(super) fn bound(ty: &Type, at: &Type, trait_path: TokenStream) -> TokenStream {
    let end = last_span(at);
    let trait_path = respan(trait_path, end);
    if starts_with_lt(ty) {
        // `where <T as Trait>::X: ...` would read as generic parameters of the where clause.
        return quote!((#ty): #trait_path);
    }
    quote!(#ty: #trait_path)
}

fn starts_with_lt(ty: &Type) -> bool {
    matches!(ty, Type::Path(path) if path.qself.is_some())
}

fn last_span(tokens: &impl ToTokens) -> Span {
    tokens.to_token_stream().into_iter().last().map_or_else(Span::call_site, |t| match t {
        proc_macro2::TokenTree::Group(g) => g.span_close(),
        other => other.span(),
    })
}

fn respan(tokens: TokenStream, span: Span) -> TokenStream {
    tokens
        .into_iter()
        .map(|mut token| {
            token.set_span(span);
            token
        })
        .collect()
}

/// One arm of the `call` match.
fn dispatch_arm(method: &Method) -> TokenStream {
    let ident = method.ident();
    let name = method.wire_name();
    let cfgs = &method.cfgs;
    let (this, args, method_var, cx) =
        (hidden_ident("__this"), hidden_ident("__args"), hidden_ident("__method"), hidden_ident("__cx"));
    let reader = hidden_ident("__reader");
    let (decode, pass) = decode_args(&method.args, &reader);
    let mutable = (!method.args.is_empty()).then(|| quote!(mut));

    let ret = method.ret.as_ref().map_or(Ret::Unit, Ret::clone);
    let guard = hidden_ident("__guard");
    // A returned reference borrows from the referent: keep the guard until it is encoded.
    let borrows = ret.ok_type().is_some_and(|ok| matches!(ty::ungroup(ok), Type::Reference(_)));
    let (prelude, receiver) = match (method.receiver == Receiver::Exclusive, borrows) {
        (true, true) => (quote!(let mut #guard = #this.write();), quote!(&mut *#guard)),
        (true, false) => (quote!(), quote!(&mut *#this.write())),
        (false, true) => (quote!(let #guard = #this.read();), quote!(&*#guard)),
        (false, false) => (quote!(), quote!(&*#this.read())),
    };
    let call = quote!(Self::#ident(#receiver, #(#pass),*));
    let value = hidden_ident("__value");
    let error = hidden_ident("__error");
    let result = hidden_ident("__result");
    let reply = |ok: &Type| {
        if method.attrs.proxy.is_some() {
            let (cx, value) = (ident_at(&cx, ok.span()), ident_at(&value, ok.span()));
            quote_spanned! {user_span(ok.span())=> {
                #[allow(unused_imports)]
                use ::procman::__private::{RegisterNoDispatch as _, RegisterShared as _, RegisterUnchecked as _};
                (&&&::procman::__private::Probe::<#ok>::new()).procman_register(#cx, #value)
            }}
        } else {
            encode(ok, &value, &cx)
        }
    };
    let body = match &ret {
        Ret::Unit => quote! {
            #call;
            ::procman::__private::ret::<()>(&())
        },
        Ret::Value(ty) => {
            let reply = reply(ty);
            quote! {
                let #value = #call;
                #reply
            }
        }
        Ret::Flatten(ty) => {
            let reply = reply(ty);
            // At the written `Result<T>`, where the error says what to write instead.
            let output = match &method.sig.output {
                syn::ReturnType::Type(_, written) => written.span(),
                syn::ReturnType::Default => method.sig.output.span(),
            };
            let error_at = ident_at(&error, output);
            let into_error = quote_spanned!(user_span(output)=> ::procman::__private::into_error(#error_at));
            quote! {
                let #result = #call;
                match #result {
                    ::core::result::Result::Ok(#value) => #reply,
                    ::core::result::Result::Err(#error) => ::core::result::Result::Err(#into_error),
                }
            }
        }
    };
    quote! {
        #(#cfgs)*
        #name => {
            let #mutable #reader = ::procman::__private::ArgsReader::new(#args, #method_var);
            #(#decode)*
            #reader.finish()?;
            #prelude
            #body
        }
    }
}

/// Encodes `value`, of the returned type `ty`, in the call whose context is `cx`.
fn encode(ty: &Type, value: &Ident, cx: &Ident) -> TokenStream {
    let span = user_span(ty.span());
    let value = ident_at(value, span);
    if let Some(shape) = ty::byte_shape(ty).filter(|shape| !matches!(shape, ty::ByteShape::Array(_))) {
        // Sent as one byte string; the proxy reads it back with `ByteBuf`.
        let private = quote!(::procman::__private);
        return match shape {
            // An owned `Vec<u8>`: the server sends its bytes from where they lie.
            ty::ByteShape::Vec if !matches!(ty::ungroup(ty), Type::Reference(_)) => {
                quote!(#private::ret_bytes(#cx, #value))
            }
            ty::ByteShape::OptVec => {
                quote!(#private::ret(&::core::option::Option::as_deref(&#value).map(#private::ByteArg)))
            }
            ty::ByteShape::ResultVec(_) => quote! {
                #private::ret(&::core::result::Result::as_ref(&#value).map(|__v| #private::ByteArg(&__v[..])))
            },
            _ => quote!(#private::ret(&#private::ByteArg(&#value[..]))),
        };
    }
    let (encoded, value) = match ty::ungroup(ty) {
        Type::Reference(reference) => {
            let elem = ty::ungroup(&reference.elem);
            if is_str(elem) || matches!(elem, Type::Slice(_)) {
                // Encoded like the `String` or `Vec<E>` the proxy decodes.
                return quote_spanned!(span=> ::procman::__private::ret::<#elem>(#value));
            }
            (elem, quote!(#value))
        }
        _ => (ty, quote!(&#value)),
    };
    quote_spanned! {span=> {
        #[allow(unused_imports)]
        use ::procman::__private::{EncodeRet as _, EncodeRetNotSerialize as _, EncodeRetUnchecked as _};
        (&&::procman::__private::Probe::<#encoded>::new()).procman_ret(#value)
    }}
}

fn is_str(ty: &Type) -> bool {
    matches!(ty::ungroup(ty), Type::Path(path) if path.qself.is_none() && path.path.is_ident("str"))
}

/// `Dispatch::connection_closed`, calling the `#[shared(on_disconnect)]` method.
fn connection_closed(method: &Method) -> TokenStream {
    let ident = method.ident();
    let cfgs = &method.cfgs;
    let (this, caller) = (hidden_ident("__this"), hidden_ident("__caller"));
    let receiver = match method.receiver {
        Receiver::Exclusive => quote!(&mut *#this.write()),
        _ => quote!(&*#this.read()),
    };
    quote! {
        #(#cfgs)*
        fn connection_closed(#this: &::procman::__private::Referent<Self>, #caller: ::procman::Caller) {
            let _ = Self::#ident(#receiver, #caller);
        }
    }
}

/// The lints about the methods' names and shapes, which are the user's to settle on the type
/// itself: the proxies only mirror them.
fn mirrored_lints() -> TokenStream {
    quote! {
        #[allow(
            clippy::len_without_is_empty,
            clippy::new_ret_no_self,
            clippy::should_implement_trait,
            clippy::wrong_self_convention
        )]
    }
}

/// The impl block's generics with `Self` replaced in its where clause, and `extra` added to it.
fn proxy_impl_generics(model: &SharedImpl, extra: Vec<WherePredicate>) -> syn::Generics {
    let item = &model.item;
    let self_ty = &item.self_ty;
    let mut generics = item.generics.clone();
    if let Some(where_clause) = &mut generics.where_clause {
        ty::ReplaceSelf(self_ty).visit_where_clause_mut(where_clause);
    }
    let where_clause = generics.make_where_clause();
    where_clause.predicates.extend(extra);
    // The referent's description: a proxy received from another process is checked with it.
    let dispatch = quote_spanned!(self_ty.span()=> ::procman::__private::Dispatch);
    where_clause.predicates.push(syn::parse_quote!(#self_ty: #dispatch));
    generics
}

/// `impl FooProxy { ... }`: one method per exposed method.
fn proxy_methods(model: &SharedImpl, proxy_ty: &Type) -> TokenStream {
    let self_ty = &model.item.self_ty;
    // With the referent named: a bare `Proxy` bound would hide the impl that says what it is.
    let generics =
        proxy_impl_generics(model, vec![syn::parse_quote!(#proxy_ty: ::procman::Proxy<Referent = #self_ty>)]);
    let (impl_generics, _, where_clause) = generics.split_for_impl();
    let params = ty::param_names(&model.item.generics);
    let methods = model.exposed().map(|m| proxy_method(m, &ProxyCall::new(m, self_ty, &params)));
    let client_methods = &model.client_methods;
    let lints = mirrored_lints();
    quote! {
        #[automatically_derived]
        #lints
        impl #impl_generics #proxy_ty #where_clause {
            #(#methods)*
            #(#client_methods)*
        }
    }
}

/// `impl AsyncFooProxy { ... }`: one `async fn` per exposed method, and the client helpers that
/// can be mirrored.
fn async_proxy_methods(model: &SharedImpl, proxy_ty: &Type, async_ty: &Type) -> TokenStream {
    let self_ty = &model.item.self_ty;
    let generics = proxy_impl_generics(
        model,
        vec![
            syn::parse_quote!(#async_ty: ::procman::AsyncProxy<Blocking = #proxy_ty>),
            syn::parse_quote!(#proxy_ty: ::procman::Proxy<Referent = #self_ty>),
        ],
    );
    let (impl_generics, _, where_clause) = generics.split_for_impl();
    let params = ty::param_names(&model.item.generics);
    let methods = model.exposed().map(|m| async_proxy_method(model, m, &ProxyCall::new(m, self_ty, &params), proxy_ty));
    let client_methods = super::mirror::async_client_methods(model);
    let lints = mirrored_lints();
    quote! {
        #[automatically_derived]
        #lints
        impl #impl_generics #async_ty #where_clause {
            #(#methods)*
            #(#client_methods)*
        }
    }
}

/// What a proxy method does, the same in the blocking and the async twin.
struct ProxyCall {
    /// The parameters after `&self`.
    inputs: Vec<TokenStream>,
    /// The statements that push the arguments into `__args`.
    pushes: Vec<TokenStream>,
    /// The where clause that checks the travelling types, at the user's tokens.
    bounds: Vec<TokenStream>,
    /// The `T` of the blocking method's `procman::Result<T>`.
    out: TokenStream,
    /// The fn of `__private` (and of `__private::asynch`) that makes the call.
    call: Ident,
    /// Its type arguments after the proxy's.
    call_args: Vec<TokenStream>,
    /// `#[shared(proxy)]`: `out` is a blocking proxy, which the async twin makes async.
    returns_proxy: bool,
}

impl ProxyCall {
    fn new(method: &Method, self_ty: &Type, params: &BTreeSet<Ident>) -> Self {
        let buf = hidden_ident("__args");
        let ProxyArgs { params: inputs, pushes, mut bounds } = proxy_args(&method.args, self_ty, params, &buf);
        let call_fn = |name: &str| Ident::new(name, Span::call_site());
        let ret = method.ret.as_ref().map_or(Ret::Unit, Ret::clone);
        let (out, call, call_args) = match ret.ok_type() {
            None => (quote!(()), call_fn("call"), vec![quote!(())]),
            Some(ok) if method.attrs.proxy.is_some() => {
                let shared = ty::replace_self(ok, self_ty);
                bounds.push(bound(&shared, ok, quote!(::procman::Shared)));
                let out = quote!(<#shared as ::procman::Shared>::Proxy);
                (out.clone(), call_fn("call_proxy"), vec![out])
            }
            Some(ok) if ty::mentions_encoded(&ty::owned(ok)) => {
                // `Encoded<X>` in the server's result: the proxy decodes the `X`.
                let form = ty::owned(&ty::replace_self(ok, self_ty));
                let client = ty::client_type(&form);
                bounds.push(bound(&form, ok, quote!(::procman::__private::Form<Client = #client>)));
                (client.into_token_stream(), call_fn("call_form"), vec![form.into_token_stream()])
            }
            Some(ok) => {
                let owned = ty::owned(&ty::replace_self(ok, self_ty));
                bounds.push(if ty::mentions(&owned, params) {
                    wire_bound(&owned, ok)
                } else {
                    let deserialize = bound(&owned, ok, quote!(::procman::__private::serde::de::DeserializeOwned));
                    let schema = bound(&owned, ok, quote!(::procman::Schema));
                    quote!(#deserialize, #schema)
                });
                // A byte result comes back as one byte string (see `encode`).
                let (call, call_args) =
                    match ty::byte_shape(ok).filter(|shape| !matches!(shape, ty::ByteShape::Array(_))) {
                        Some(ty::ByteShape::OptVec) => (call_fn("call_opt_bytes"), vec![]),
                        Some(ty::ByteShape::ResultVec(err)) => {
                            let err = ty::replace_self(&err, self_ty);
                            (call_fn("call_result_bytes"), vec![err.into_token_stream()])
                        }
                        Some(_) => (call_fn("call_bytes"), vec![]),
                        None => (call_fn("call"), vec![owned.to_token_stream()]),
                    };
                (owned.into_token_stream(), call, call_args)
            }
        };
        ProxyCall { inputs, pushes, bounds, out, call, call_args, returns_proxy: method.attrs.proxy.is_some() }
    }

    /// The where clause of the method, and `#[allow(unused_parens)]` when it needs it.
    fn where_clause(&self) -> (Option<TokenStream>, Option<TokenStream>) {
        let bounds = &self.bounds;
        let where_clause = (!bounds.is_empty()).then(|| quote!(where #(#bounds),*));
        // `bound` parenthesizes qualified paths (`(<T as X>::Y): Trait`); rustc finds that redundant.
        let parens =
            bounds.iter().any(|b| matches!(b.clone().into_iter().next(), Some(proc_macro2::TokenTree::Group(_))));
        (where_clause, parens.then(|| quote!(#[allow(unused_parens)])))
    }

    /// `let mut __args = ArgsBuf::new(); __args.push(...)?; ...`
    fn build_args(&self) -> TokenStream {
        let buf = hidden_ident("__args");
        let pushes = &self.pushes;
        let mutable = (!pushes.is_empty()).then(|| quote!(mut));
        quote! {
            let #mutable #buf = ::procman::__private::ArgsBuf::new();
            #(#pushes)*
        }
    }
}

fn proxy_method(method: &Method, call: &ProxyCall) -> TokenStream {
    let forwarded = &method.forwarded;
    let vis = &method.vis;
    let ident = method.ident();
    let name = method.wire_name();
    let buf = hidden_ident("__args");
    let (inputs, out, call_fn, call_args) = (&call.inputs, &call.out, &call.call, &call.call_args);
    let (where_clause, allow) = call.where_clause();
    let build = call.build_args();
    quote! {
        #(#forwarded)*
        #allow
        #vis fn #ident(&self, #(#inputs),*) -> ::procman::Result<#out> #where_clause {
            #build
            ::procman::__private::#call_fn::<Self #(, #call_args)*>(self, #name, #buf)
        }
    }
}

/// The async twin of `proxy_method`: the arguments are encoded before the first await, then the
/// call of `__private::asynch` is awaited with the blocking proxy inside.
fn async_proxy_method(model: &SharedImpl, method: &Method, call: &ProxyCall, proxy_ty: &Type) -> TokenStream {
    let forwarded = &method.forwarded;
    let vis = &method.vis;
    let ident = method.ident();
    let name = method.wire_name();
    let buf = hidden_ident("__args");
    let (inputs, out, call_fn, call_args) = (&call.inputs, &call.out, &call.call, &call.call_args);
    let (where_clause, allow) = call.where_clause();
    let build = call.build_args();
    let undo =
        match method.attrs.undo.as_ref().and_then(|undo| model.methods.iter().find(|m| m.ident() == &undo.method)) {
            Some(undo) => {
                let undo = undo.wire_name();
                quote!(::core::option::Option::Some(#undo))
            }
            None => quote!(::core::option::Option::None),
        };
    let awaited = quote! {
        ::procman::__private::asynch::#call_fn::<#proxy_ty #(, #call_args)*>(
            ::procman::AsyncProxy::blocking(self),
            #name,
            #buf,
            #undo,
        )
        .await
    };
    let (out, body) = if call.returns_proxy {
        (
            quote!(<#out as ::procman::Proxy>::Async),
            quote!(::core::result::Result::map(#awaited, ::procman::Proxy::into_async)),
        )
    } else {
        (out.clone(), awaited)
    };
    quote! {
        #(#forwarded)*
        #allow
        #vis async fn #ident(&self, #(#inputs),*) -> ::procman::Result<#out> #where_clause {
            #build
            #body
        }
    }
}
