//! How argument and return types travel: what the proxy takes, what the server decodes, what
//! the method receives, and which types are refused (with a message saying what is supported).

use quote::ToTokens;
use std::collections::BTreeSet;
use syn::visit::Visit;
use syn::visit_mut::VisitMut;
use syn::{GenericArgument, Ident, PathArguments, ReturnType, Type};

/// The shape of one argument of an exposed method or a creator.
#[derive(Clone)]
pub(crate) enum ArgKind {
    /// `&str`: the proxy sends a `str`, the server decodes a `String` and passes `&s`.
    Str,
    /// `&[E]`: the proxy sends `[E]`, the server decodes a `Vec<E>` and passes `&v[..]`.
    Slice(Type),
    /// `&E`: the proxy sends `E`, the server decodes an `E` and passes `&v`.
    Ref(Type),
    /// `T`: sent, decoded and passed by value.
    Owned,
}

/// The shape of the return type of an exposed method.
#[derive(Clone)]
pub(crate) enum Ret {
    /// No return type, or `()`.
    Unit,
    /// Any other type, returned whole (`Result<T, E>` with two arguments included: the caller
    /// gets the `E` back typed).
    Value(Type),
    /// A path whose last segment is `Result` with one argument (`procman::Result<T>`,
    /// `io::Result<T>`): `Ok(v)` returns `v`, `Err(e)` becomes the call's `procman::Error`.
    Flatten(Type),
}

impl Ret {
    /// The type the method produces on success (`T` for `Result<T>`), if any.
    pub(crate) fn ok_type(&self) -> Option<&Type> {
        match self {
            Ret::Unit => None,
            Ret::Value(ty) | Ret::Flatten(ty) => Some(ty),
        }
    }
}

const MUT_ARG: &str = "`&mut` arguments are not supported: the argument is copied to the manager, so \
     changes would not come back; take the value (`T`) and return what changed";
const BORROWED_ARG: &str = "borrowed argument types are not supported: the server decodes each \
     argument into an owned value; use `&str`, `&[T]` or `&T` at the top level, or an owned type \
     (`String`, `Vec<T>`)";
const IMPL_TRAIT: &str = "`impl Trait` is not supported in exposed methods: the server must know \
     the concrete type to decode it";
const DYN_TRAIT: &str = "trait objects cannot travel between processes: use a concrete type";
const BORROWED_RET: &str = "borrowed return types are not supported here: a top-level `&str`, \
     `&[T]` or `&T` reaches the caller as `String`, `Vec<T>` or `T`, but other borrows cannot be \
     decoded; return an owned type";

/// Classifies an argument type.
pub(crate) fn classify_arg(ty: &Type) -> syn::Result<ArgKind> {
    let ty = ungroup(ty);
    let Type::Reference(reference) = ty else {
        check_owned(ty, BORROWED_ARG)?;
        return Ok(ArgKind::Owned);
    };
    if reference.mutability.is_some() {
        return Err(syn::Error::new_spanned(reference, MUT_ARG));
    }
    if let Some(lifetime) = &reference.lifetime
        && lifetime.ident != "_"
    {
        return Err(syn::Error::new_spanned(
            lifetime,
            "named lifetimes are not supported in exposed arguments: write `&T` (the server \
             lends the decoded value for the duration of the call)",
        ));
    }
    let elem = ungroup(&reference.elem);
    match elem {
        Type::Path(path) if path.qself.is_none() && path.path.is_ident("str") => Ok(ArgKind::Str),
        Type::Slice(slice) => {
            check_owned(&slice.elem, BORROWED_ARG)?;
            Ok(ArgKind::Slice((*slice.elem).clone()))
        }
        _ => {
            check_owned(elem, BORROWED_ARG)?;
            Ok(ArgKind::Ref(elem.clone()))
        }
    }
}

/// Classifies the return type of an exposed method.
pub(crate) fn classify_ret(output: &ReturnType) -> syn::Result<Ret> {
    let ReturnType::Type(_, ty) = output else {
        return Ok(Ret::Unit);
    };
    let ty = ungroup(ty);
    if let Type::Tuple(tuple) = ty
        && tuple.elems.is_empty()
    {
        return Ok(Ret::Unit);
    }
    if let Some(ok) = one_arg_result(ty) {
        check_owned(&owned(ok), BORROWED_RET)?;
        return Ok(Ret::Flatten(ok.clone()));
    }
    check_owned(&owned(ty), BORROWED_RET)?;
    Ok(Ret::Value(ty.clone()))
}

/// `T` when `ty` is a path whose last segment is `Result` with exactly one type argument.
pub(crate) fn one_arg_result(ty: &Type) -> Option<&Type> {
    let args = result_args(ty)?;
    match args.as_slice() {
        [ok] => Some(ok),
        _ => None,
    }
}

/// The type arguments of a path type whose last segment is `Result`.
pub(crate) fn result_args(ty: &Type) -> Option<Vec<&Type>> {
    let Type::Path(path) = ungroup(ty) else { return None };
    if path.qself.is_some() {
        return None;
    }
    let last = path.path.segments.last()?;
    if last.ident != "Result" {
        return None;
    }
    let PathArguments::AngleBracketed(args) = &last.arguments else { return None };
    let mut types = Vec::new();
    for arg in &args.args {
        match arg {
            GenericArgument::Type(ty) => types.push(ty),
            _ => return None,
        }
    }
    Some(types)
}

/// The owned form of a returned type: `&str` -> `String`, `&[E]` -> `Vec<E>`, `&E` -> `E`.
/// This is the type the proxy decodes.
pub(crate) fn owned(ty: &Type) -> Type {
    let Type::Reference(reference) = ungroup(ty) else {
        return ty.clone();
    };
    match ungroup(&reference.elem) {
        Type::Path(path) if path.qself.is_none() && path.path.is_ident("str") => {
            syn::parse_quote!(::std::string::String)
        }
        Type::Slice(slice) => {
            let elem = &slice.elem;
            syn::parse_quote!(::std::vec::Vec<#elem>)
        }
        elem => elem.clone(),
    }
}

/// Refuses borrows (other than `'static`), `impl Trait` and trait objects inside `ty`.
fn check_owned(ty: &Type, borrowed: &str) -> syn::Result<()> {
    struct Check<'m> {
        error: Option<syn::Error>,
        borrowed: &'m str,
    }
    impl Check<'_> {
        fn fail(&mut self, tokens: &dyn ToTokens, message: &str) {
            if self.error.is_none() {
                self.error = Some(syn::Error::new_spanned(tokens.to_token_stream(), message));
            }
        }
    }
    impl<'ast> Visit<'ast> for Check<'_> {
        fn visit_type_reference(&mut self, node: &'ast syn::TypeReference) {
            let message = if node.mutability.is_some() { MUT_ARG } else { self.borrowed };
            self.fail(node, message);
        }
        fn visit_type_impl_trait(&mut self, node: &'ast syn::TypeImplTrait) {
            self.fail(node, IMPL_TRAIT);
        }
        fn visit_type_trait_object(&mut self, node: &'ast syn::TypeTraitObject) {
            self.fail(node, DYN_TRAIT);
        }
        fn visit_lifetime(&mut self, node: &'ast syn::Lifetime) {
            if node.ident != "static" {
                let message = self.borrowed;
                self.fail(node, message);
            }
        }
    }
    let mut check = Check { error: None, borrowed };
    check.visit_type(ty);
    check.error.map_or(Ok(()), Err)
}

/// Refuses `impl Trait` anywhere in a signature's types.
pub(crate) fn check_no_impl_trait(ty: &Type) -> syn::Result<()> {
    struct Find(Option<syn::Error>);
    impl<'ast> Visit<'ast> for Find {
        fn visit_type_impl_trait(&mut self, node: &'ast syn::TypeImplTrait) {
            if self.0.is_none() {
                self.0 = Some(syn::Error::new_spanned(node, IMPL_TRAIT));
            }
        }
    }
    let mut find = Find(None);
    find.visit_type(ty);
    find.0.map_or(Ok(()), Err)
}

/// Strips invisible groups (from `macro_rules!` `$t:ty`) and parentheses around a type.
pub(crate) fn ungroup(mut ty: &Type) -> &Type {
    loop {
        match ty {
            Type::Group(group) => ty = &group.elem,
            Type::Paren(paren) => ty = &paren.elem,
            _ => return ty,
        }
    }
}

/// `ty` with every `Self` replaced by `with`: in a proxy's impl block `Self` is the proxy, not
/// the referent.
pub(crate) fn replace_self(ty: &Type, with: &Type) -> Type {
    let mut ty = ty.clone();
    ReplaceSelf(with).visit_type_mut(&mut ty);
    ty
}

/// Replaces `Self` in any syntax tree node.
pub(crate) struct ReplaceSelf<'a>(pub(crate) &'a Type);

impl VisitMut for ReplaceSelf<'_> {
    fn visit_type_mut(&mut self, ty: &mut Type) {
        if let Type::Path(path) = ty {
            let segments = &path.path.segments;
            if path.qself.is_none() && path.path.leading_colon.is_none() && segments[0].ident == "Self" {
                let with = self.0;
                if segments.len() == 1 {
                    *ty = with.clone();
                } else {
                    let rest = segments.iter().skip(1);
                    *ty = syn::parse_quote!(<#with>#(::#rest)*);
                }
                return;
            }
        }
        syn::visit_mut::visit_type_mut(self, ty);
    }
}

/// True when `ty` names one of `params` (the impl's type and const parameters) or `Self`: a
/// bound on it is a real bound, not a fact about a concrete type.
pub(crate) fn mentions(ty: &Type, params: &BTreeSet<Ident>) -> bool {
    struct Find<'a> {
        params: &'a BTreeSet<Ident>,
        found: bool,
    }
    impl<'ast> Visit<'ast> for Find<'_> {
        fn visit_path(&mut self, path: &'ast syn::Path) {
            if path.leading_colon.is_none() {
                let first = &path.segments[0].ident;
                if first == "Self" || self.params.contains(first) {
                    self.found = true;
                }
            }
            syn::visit::visit_path(self, path);
        }
    }
    let mut find = Find { params, found: false };
    find.visit_type(ty);
    find.found
}

/// The names of the type and const parameters of `generics`.
pub(crate) fn param_names(generics: &syn::Generics) -> BTreeSet<Ident> {
    generics
        .params
        .iter()
        .filter_map(|param| match param {
            syn::GenericParam::Type(param) => Some(param.ident.clone()),
            syn::GenericParam::Const(param) => Some(param.ident.clone()),
            syn::GenericParam::Lifetime(_) => None,
        })
        .collect()
}

/// True when `path` is `Encoded<X>` (any prefix): a value the proxy encodes for the server,
/// which stores it as bytes.
fn encoded_arg(path: &syn::TypePath) -> Option<&Type> {
    if path.qself.is_some() {
        return None;
    }
    let last = path.path.segments.last()?;
    if last.ident != "Encoded" {
        return None;
    }
    let PathArguments::AngleBracketed(args) = &last.arguments else { return None };
    match args.args.iter().collect::<Vec<_>>().as_slice() {
        // `Encoded<Opaque>` stays encoded on both sides: the server does not know the type.
        [GenericArgument::Type(Type::Path(inner))]
            if inner.path.segments.last().is_some_and(|s| s.ident == "Opaque") =>
        {
            None
        }
        [GenericArgument::Type(inner)] => Some(inner),
        _ => None,
    }
}

/// True when `ty` contains `Encoded<X>` somewhere: the proxy converts it with `Form`.
pub(crate) fn mentions_encoded(ty: &Type) -> bool {
    struct Find(bool);
    impl<'ast> Visit<'ast> for Find {
        fn visit_type_path(&mut self, node: &'ast syn::TypePath) {
            if encoded_arg(node).is_some() {
                self.0 = true;
            }
            syn::visit::visit_type_path(self, node);
        }
    }
    let mut find = Find(false);
    find.visit_type(ty);
    find.0
}

/// The type the proxy's user sees for `ty`: every `Encoded<X>` replaced by `X`
/// (`Option<Encoded<V>>` -> `Option<V>`). `Form::Client` is the same type, computed by traits.
pub(crate) fn client_type(ty: &Type) -> Type {
    struct Replace;
    impl VisitMut for Replace {
        fn visit_type_mut(&mut self, ty: &mut Type) {
            if let Type::Path(path) = ty
                && let Some(inner) = encoded_arg(path)
            {
                *ty = inner.clone();
                self.visit_type_mut(ty);
                return;
            }
            syn::visit_mut::visit_type_mut(self, ty);
        }
    }
    let mut ty = ty.clone();
    Replace.visit_type_mut(&mut ty);
    ty
}

/// `ty` with the type parameters `params` replaced by `with`: a generic creator's server side
/// instantiates them with `procman::Opaque`.
pub(crate) fn replace_params(ty: &Type, params: &BTreeSet<Ident>, with: &Type) -> Type {
    struct Replace<'a> {
        params: &'a BTreeSet<Ident>,
        with: &'a Type,
    }
    impl VisitMut for Replace<'_> {
        fn visit_type_mut(&mut self, ty: &mut Type) {
            if let Type::Path(path) = ty
                && path.qself.is_none()
                && let Some(ident) = path.path.get_ident()
                && self.params.contains(ident)
            {
                *ty = self.with.clone();
                return;
            }
            syn::visit_mut::visit_type_mut(self, ty);
        }
    }
    let mut ty = ty.clone();
    Replace { params, with }.visit_type_mut(&mut ty);
    ty
}

/// A type that travels as a serde byte string rather than serde's sequence of numbers, found
/// by its spelling: both sides of the wire are generated from the same signature.
#[derive(Clone)]
pub(crate) enum ByteShape {
    /// `Vec<u8>`, or a `&[u8]` argument or result.
    Vec,
    /// `Option<Vec<u8>>`.
    OptVec,
    /// `[u8; N]`, with its length.
    Array(syn::Expr),
    /// `Result<Vec<u8>, E>` (a result only), with its error type.
    ResultVec(Type),
}

/// The byte shape of an argument's or a result's type, if it has one.
pub(crate) fn byte_shape(ty: &Type) -> Option<ByteShape> {
    match ungroup(ty) {
        Type::Reference(reference) if reference.mutability.is_none() => match ungroup(&reference.elem) {
            Type::Slice(slice) if is_u8(&slice.elem) => Some(ByteShape::Vec),
            _ => None,
        },
        Type::Array(array) if is_u8(&array.elem) => Some(ByteShape::Array(array.len.clone())),
        ty if is_byte_vec(ty) => Some(ByteShape::Vec),
        ty => {
            if let Some([inner]) = generic_args(ty, "Option").as_deref()
                && is_byte_vec(inner)
            {
                return Some(ByteShape::OptVec);
            }
            match result_args(ty).as_deref() {
                Some([ok, err]) if is_byte_vec(ok) => Some(ByteShape::ResultVec((*err).clone())),
                _ => None,
            }
        }
    }
}

/// `Vec<u8>` (any prefix: `std::vec::Vec<u8>`).
fn is_byte_vec(ty: &Type) -> bool {
    matches!(generic_args(ty, "Vec").as_deref(), Some([elem]) if is_u8(elem))
}

/// `u8` (or `core::primitive::u8`, `std::primitive::u8`).
fn is_u8(ty: &Type) -> bool {
    let Type::Path(path) = ungroup(ty) else { return false };
    if path.qself.is_some() {
        return false;
    }
    let segments: Vec<String> = path.path.segments.iter().map(|s| s.ident.to_string()).collect();
    let plain = path.path.segments.iter().all(|s| s.arguments.is_none());
    plain
        && match segments.as_slice() {
            [u8] => u8 == "u8" && path.path.leading_colon.is_none(),
            [krate, primitive, u8] => (krate == "core" || krate == "std") && primitive == "primitive" && u8 == "u8",
            _ => false,
        }
}

/// The type arguments of a path type whose last segment is `name`.
fn generic_args<'a>(ty: &'a Type, name: &str) -> Option<Vec<&'a Type>> {
    let Type::Path(path) = ungroup(ty) else { return None };
    if path.qself.is_some() {
        return None;
    }
    let last = path.path.segments.last()?;
    if last.ident != name {
        return None;
    }
    let PathArguments::AngleBracketed(args) = &last.arguments else { return None };
    args.args
        .iter()
        .map(|arg| match arg {
            GenericArgument::Type(ty) => Some(ty),
            _ => None,
        })
        .collect()
}
