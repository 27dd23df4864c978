//! The model: what the macros read from the user's items. Each node keeps the user's tokens,
//! so that errors and bound checks can point at them.

use crate::attr::{self, CreatorAttrs, ImplArgs, ManagerArgs, MethodAttrs};
use crate::ctxt::Errors;
use crate::symbol::{HIDDEN_PREFIX, MANAGER};
use crate::ty::{self, ArgKind, Ret};
use proc_macro2::Span;
use quote::format_ident;
use syn::spanned::Spanned;
use syn::{
    Attribute, Block, DeriveInput, FnArg, Generics, Ident, ImplItem, ItemImpl, ItemStruct, LitStr, Pat, ReturnType,
    Signature, Type, Visibility,
};

/// A type with `#[derive(Shared)]`.
pub(crate) struct SharedType<'a> {
    pub(crate) input: &'a DeriveInput,
    pub(crate) ident: &'a Ident,
    pub(crate) generics: &'a Generics,
    /// `FooProxy`, at the span of `Foo`.
    pub(crate) proxy_ident: Ident,
    /// `AsyncFooProxy`, at the span of `Foo`.
    pub(crate) async_proxy_ident: Ident,
}

impl<'a> SharedType<'a> {
    pub(crate) fn from_syn(input: &'a DeriveInput) -> Self {
        SharedType {
            input,
            ident: &input.ident,
            generics: &input.generics,
            proxy_ident: proxy_ident(&input.ident),
            async_proxy_ident: async_proxy_ident(&input.ident),
        }
    }
}

/// `Foo` -> `FooProxy`, at the span of `Foo`.
pub(crate) fn proxy_ident(ident: &Ident) -> Ident {
    format_ident!("{}Proxy", ident, span = ident.span())
}

/// `Foo` -> `AsyncFooProxy` (`Async` and the proxy's name), at the span of `Foo`.
pub(crate) fn async_proxy_ident(ident: &Ident) -> Ident {
    format_ident!("Async{}", proxy_ident(ident), span = ident.span())
}

/// An impl block with `#[shared]`.
pub(crate) struct SharedImpl {
    /// The block as it is re-emitted: helper attributes removed.
    pub(crate) item: ItemImpl,
    /// `#[shared(exposed(...))]`, when given.
    pub(crate) exposed_list: Option<Vec<Ident>>,
    /// Every fn of the block, in order.
    pub(crate) methods: Vec<Method>,
    /// The proxy type (`FooProxy<T>` for `Foo<T>`); `None` when the self type is no path.
    pub(crate) proxy_ty: Option<Type>,
    /// The async proxy type (`AsyncFooProxy<T>` for `Foo<T>`); `None` with `proxy_ty`.
    pub(crate) async_proxy_ty: Option<Type>,
    /// The `#[shared(client)]` methods, taken out of the block: they become methods of the
    /// proxy, run in the caller's process.
    pub(crate) client_methods: Vec<syn::ImplItemFn>,
}

/// A fn of a `#[shared]` impl block.
pub(crate) struct Method {
    pub(crate) sig: Signature,
    pub(crate) vis: Visibility,
    pub(crate) attrs: MethodAttrs,
    /// `cfg`, docs and `deprecated`, copied to the proxy twin.
    pub(crate) forwarded: Vec<Attribute>,
    /// `cfg`, copied to every generated piece for this method.
    pub(crate) cfgs: Vec<Attribute>,
    pub(crate) receiver: Receiver,
    pub(crate) args: Vec<Arg>,
    pub(crate) ret: syn::Result<Ret>,
    /// In the exposed set.
    pub(crate) exposed: bool,
    /// No error was found in it: it gets its generated twins. Set by `valid`.
    pub(crate) ok: bool,
}

/// The receiver of a method.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Receiver {
    /// An associated fn: not a method.
    None,
    /// `&self`: runs under the referent's read lock, concurrently with other `&self` calls.
    Shared,
    /// `&mut self`: runs under the write lock.
    Exclusive,
    /// `self`, `self: Box<Self>`, ...: cannot be exposed.
    Other,
}

/// One argument of an exposed method or a creator.
pub(crate) struct Arg {
    /// The name in the proxy's signature: the user's when the pattern is a plain name.
    pub(crate) name: Ident,
    /// The type as written.
    pub(crate) ty: Type,
    pub(crate) kind: syn::Result<ArgKind>,
}

impl SharedImpl {
    pub(crate) fn from_syn(mut item: ItemImpl, args: ImplArgs, errors: &mut Errors) -> Self {
        let exposed_list = args.exposed;
        let mut methods = Vec::new();
        let mut client_methods = Vec::new();
        let mut kept = Vec::new();
        for mut impl_item in std::mem::take(&mut item.items) {
            match &mut impl_item {
                ImplItem::Fn(f) => {
                    let attrs = attr::method_attrs(&mut f.attrs, errors);
                    if let Some(span) = attrs.client {
                        client_method_shape(f, &attrs, span, errors);
                        if let ImplItem::Fn(f) = impl_item {
                            client_methods.push(f);
                        }
                        continue;
                    }
                    methods.push(Method::from_syn(&f.attrs, &f.vis, &f.sig, attrs, exposed_list.as_deref()));
                }
                ImplItem::Const(c) => no_helper(&mut c.attrs, errors),
                ImplItem::Type(t) => no_helper(&mut t.attrs, errors),
                _ => {}
            }
            kept.push(impl_item);
        }
        item.items = kept;
        let proxy_ty = proxy_type(&item.self_ty, proxy_ident);
        let async_proxy_ty = proxy_type(&item.self_ty, async_proxy_ident);
        SharedImpl { item, exposed_list, methods, proxy_ty, async_proxy_ty, client_methods }
    }

    /// The methods that get a proxy twin and a dispatch arm.
    pub(crate) fn exposed(&self) -> impl Iterator<Item = &Method> {
        self.methods.iter().filter(|m| m.exposed && m.ok)
    }

    /// The method marked `#[shared(on_disconnect)]`.
    pub(crate) fn on_disconnect(&self) -> Option<&Method> {
        self.methods.iter().find(|m| m.attrs.on_disconnect.is_some() && m.ok)
    }
}

/// A `#[shared(client)]` method takes `&self` (the proxy) and no other option.
fn client_method_shape(f: &syn::ImplItemFn, attrs: &MethodAttrs, span: Span, errors: &mut Errors) {
    use crate::symbol::{CLIENT, ON_DISCONNECT, PROXY, RENAME, SKIP, UNDO};
    let others = [(attrs.skip, SKIP), (attrs.proxy, PROXY), (attrs.on_disconnect, ON_DISCONNECT)];
    for (other, name) in others {
        if other.is_some() {
            errors.error_at(span, format_args!("`{CLIENT}` cannot be combined with `{name}`"));
        }
    }
    if let Some(rename) = &attrs.rename {
        errors
            .error(rename, format_args!("`{RENAME}` has no effect on a `{CLIENT}` method: it never crosses the wire"));
    }
    if let Some(undo) = &attrs.undo {
        errors.error(
            &undo.tokens,
            format_args!(
                "`{UNDO}` has no effect on a `{CLIENT}` method: it runs in the caller, whose result is never lost"
            ),
        );
    }
    if receiver(&f.sig) != Receiver::Shared {
        errors.error(
            &f.sig.ident,
            format_args!(
                "a `{CLIENT}` method takes `&self`: it runs in the caller's process, where `self` is the proxy"
            ),
        );
    }
}

/// `#[shared(...)]` on an associated const or type: not meaningful, reported at the attribute.
fn no_helper(attrs: &mut Vec<Attribute>, errors: &mut Errors) {
    for attr in attr::take_helper_attrs(attrs, crate::symbol::SHARED) {
        errors.error(attr, "`#[shared(...)]` options go on methods");
    }
}

/// `path::FooProxy<T>` for `path::Foo<T>` (or `path::AsyncFooProxy<T>`, after `name`).
fn proxy_type(self_ty: &Type, name: fn(&Ident) -> Ident) -> Option<Type> {
    let Type::Path(path) = ty::ungroup(self_ty) else { return None };
    if path.qself.is_some() {
        return None;
    }
    let mut path = path.clone();
    let last = path.path.segments.last_mut()?;
    last.ident = name(&last.ident);
    Some(Type::Path(path))
}

impl Method {
    fn from_syn(
        attrs: &[Attribute],
        vis: &Visibility,
        sig: &Signature,
        helper: MethodAttrs,
        exposed_list: Option<&[Ident]>,
    ) -> Self {
        let receiver = receiver(sig);
        let exposed = match exposed_list {
            Some(list) => list.contains(&sig.ident),
            None => {
                !matches!(vis, Visibility::Inherited)
                    && receiver != Receiver::None
                    && helper.skip.is_none()
                    && helper.on_disconnect.is_none()
                    && helper.client.is_none()
            }
        };
        Method {
            sig: sig.clone(),
            vis: vis.clone(),
            attrs: helper,
            forwarded: attr::forwarded(attrs),
            cfgs: attr::cfgs(attrs),
            receiver,
            args: args(sig),
            ret: ty::classify_ret(&sig.output),
            exposed,
            ok: true,
        }
    }

    pub(crate) fn ident(&self) -> &Ident {
        &self.sig.ident
    }

    /// The method's name on the wire: `#[shared(rename = "...")]`, or its Rust name.
    pub(crate) fn wire_name(&self) -> String {
        self.attrs.rename.as_ref().map_or_else(|| self.sig.ident.to_string(), LitStr::value)
    }

    /// The span of the receiver, or of the name for an associated fn.
    pub(crate) fn receiver_span(&self) -> Span {
        self.sig.receiver().map_or_else(|| self.sig.ident.span(), |r| r.span())
    }
}

fn receiver(sig: &Signature) -> Receiver {
    let Some(receiver) = sig.receiver() else { return Receiver::None };
    // `&self`, `&mut self`, `self: &Self` and `self: &mut Self` all have a `&Self` type here.
    match ty::ungroup(&receiver.ty) {
        Type::Reference(reference) if is_self(&reference.elem) => {
            if reference.mutability.is_some() {
                Receiver::Exclusive
            } else {
                Receiver::Shared
            }
        }
        _ => Receiver::Other,
    }
}

fn is_self(ty: &Type) -> bool {
    matches!(ty::ungroup(ty), Type::Path(path) if path.qself.is_none() && path.path.is_ident("Self"))
}

/// The typed arguments of `sig` (the receiver excluded).
fn args(sig: &Signature) -> Vec<Arg> {
    sig.inputs
        .iter()
        .filter_map(|input| match input {
            FnArg::Typed(typed) => Some(typed),
            FnArg::Receiver(_) => None,
        })
        .enumerate()
        .map(|(i, typed)| {
            let name = match &*typed.pat {
                Pat::Ident(pat) if pat.by_ref.is_none() && pat.subpat.is_none() => pat.ident.clone(),
                _ => format_ident!("__arg{}", i),
            };
            Arg { name, ty: (*typed.ty).clone(), kind: ty::classify_arg(&typed.ty) }
        })
        .collect()
}

/// A unit struct with `#[manager]`.
pub(crate) struct ManagerStruct {
    pub(crate) item: ItemStruct,
    pub(crate) args: ManagerArgs,
}

/// An impl block with `#[manager]`.
pub(crate) struct ManagerImpl {
    /// The block; its creators are taken out into `items`.
    pub(crate) item: ItemImpl,
    /// The block's items in order: creators and everything else.
    pub(crate) items: Vec<ManagerItem>,
}

/// An item of a `#[manager]` impl block.
pub(crate) enum ManagerItem {
    /// A creator: a fn without receiver.
    Creator(Creator),
    /// Anything else, kept as it is.
    Other(ImplItem),
}

/// A creator: `fn counter(start: i64) -> Counter { ... }`, or a typeid declaration without body.
pub(crate) struct Creator {
    /// The user's attributes, helper attributes removed.
    pub(crate) attrs: Vec<Attribute>,
    pub(crate) forwarded: Vec<Attribute>,
    pub(crate) cfgs: Vec<Attribute>,
    pub(crate) vis: Visibility,
    pub(crate) sig: Signature,
    /// `None` for a declaration: the client side of a remote manager's typeid.
    pub(crate) body: Option<Block>,
    pub(crate) helper: CreatorAttrs,
    /// The typeid: `#[manager(typeid = "...")]` or the fn name.
    pub(crate) typeid: String,
    /// Where the typeid is written (the literal, or the fn name).
    pub(crate) typeid_span: Span,
    pub(crate) args: Vec<Arg>,
    pub(crate) ret: syn::Result<CreatorRet>,
    /// No error was found in it. Set by `valid`.
    pub(crate) ok: bool,
}

/// What a creator returns.
pub(crate) struct CreatorRet {
    /// The shared type created.
    pub(crate) shared: Type,
    /// The creator returns `Result<U>` (or `Result<U, E>`): its error becomes the create
    /// call's error.
    pub(crate) fallible: bool,
}

impl ManagerImpl {
    pub(crate) fn from_syn(mut item: ItemImpl, errors: &mut Errors) -> Self {
        let items = std::mem::take(&mut item.items)
            .into_iter()
            .map(|impl_item| match impl_item {
                ImplItem::Fn(f) if f.sig.receiver().is_none() => {
                    ManagerItem::Creator(Creator::from_parts(f.attrs, f.vis, f.sig, Some(f.block), errors))
                }
                ImplItem::Verbatim(tokens) => match syn::parse2::<Declaration>(tokens.clone()) {
                    // A fn without a body: `fn remote_queue() -> Queue<String>;`
                    Ok(f) if f.sig.receiver().is_none() => {
                        ManagerItem::Creator(Creator::from_parts(f.attrs, f.vis, f.sig, None, errors))
                    }
                    _ => ManagerItem::Other(ImplItem::Verbatim(tokens)),
                },
                mut other => {
                    if let Some(attrs) = impl_item_attrs(&mut other) {
                        for attr in attr::take_helper_attrs(attrs, MANAGER) {
                            errors.error(attr, "`#[manager(...)]` options go on creators: fns without `self`");
                        }
                    }
                    ManagerItem::Other(other)
                }
            })
            .collect();
        ManagerImpl { item, items }
    }

    pub(crate) fn creators(&self) -> impl Iterator<Item = &Creator> {
        self.items.iter().filter_map(|item| match item {
            ManagerItem::Creator(c) => Some(c),
            ManagerItem::Other(_) => None,
        })
    }
}

fn impl_item_attrs(item: &mut ImplItem) -> Option<&mut Vec<Attribute>> {
    match item {
        ImplItem::Fn(f) => Some(&mut f.attrs),
        ImplItem::Const(c) => Some(&mut c.attrs),
        ImplItem::Type(t) => Some(&mut t.attrs),
        ImplItem::Macro(m) => Some(&mut m.attrs),
        _ => None,
    }
}

/// A fn without a body in an impl block, which syn keeps as verbatim tokens.
struct Declaration {
    attrs: Vec<Attribute>,
    vis: Visibility,
    sig: Signature,
}

impl syn::parse::Parse for Declaration {
    fn parse(input: syn::parse::ParseStream<'_>) -> syn::Result<Self> {
        let attrs = input.call(Attribute::parse_outer)?;
        let vis = input.parse()?;
        let sig = input.parse()?;
        input.parse::<syn::Token![;]>()?;
        Ok(Declaration { attrs, vis, sig })
    }
}

impl Creator {
    fn from_parts(
        mut attrs: Vec<Attribute>,
        vis: Visibility,
        sig: Signature,
        body: Option<Block>,
        errors: &mut Errors,
    ) -> Self {
        let helper = attr::creator_attrs(&mut attrs, errors);
        let (typeid, typeid_span) = match &helper.typeid {
            Some(lit) => (lit.value(), lit.span()),
            None => (sig.ident.to_string(), sig.ident.span()),
        };
        Creator {
            forwarded: attr::forwarded(&attrs),
            cfgs: attr::cfgs(&attrs),
            attrs,
            vis,
            args: args(&sig),
            ret: creator_ret(&sig),
            sig,
            body,
            helper,
            typeid,
            typeid_span,
            ok: true,
        }
    }

    /// The hidden fn that keeps the creator's body: `__procman_creator_counter`.
    pub(crate) fn body_ident(&self) -> Ident {
        format_ident!("{}creator_{}", HIDDEN_PREFIX, self.sig.ident)
    }

    /// The hidden fn that fingerprints the creator's argument types: `__procman_signature_counter`.
    pub(crate) fn signature_ident(&self) -> Ident {
        format_ident!("{}signature_{}", HIDDEN_PREFIX, self.sig.ident)
    }

    /// The hidden fn that describes the created type: `__procman_describe_counter`.
    pub(crate) fn describe_ident(&self) -> Ident {
        format_ident!("{}describe_{}", HIDDEN_PREFIX, self.sig.ident)
    }

    /// The hidden fn that decodes the arguments and calls the body: `__procman_create_counter`.
    pub(crate) fn trampoline_ident(&self) -> Ident {
        format_ident!("{}create_{}", HIDDEN_PREFIX, self.sig.ident)
    }
}

fn creator_ret(sig: &Signature) -> syn::Result<CreatorRet> {
    let ReturnType::Type(_, ty) = &sig.output else {
        return Err(syn::Error::new_spanned(
            &sig.ident,
            "a creator returns the shared object it creates: add `-> Type`, where `Type` has \
             `#[derive(Shared)]`",
        ));
    };
    ty::check_no_impl_trait(ty)?;
    match ty::result_args(ty).as_deref() {
        Some([ok] | [ok, _]) => Ok(CreatorRet { shared: (*ok).clone(), fallible: true }),
        _ => Ok(CreatorRet { shared: (**ty).clone(), fallible: false }),
    }
}

impl ManagerStruct {
    pub(crate) fn from_syn(item: ItemStruct, args: ManagerArgs) -> Self {
        ManagerStruct { item, args }
    }
}
