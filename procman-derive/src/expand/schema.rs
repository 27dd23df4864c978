//! `#[derive(Schema)]`: the type's shape, as serde encodes it with postcard.
//!
//! Field and variant names follow `#[serde(rename = "...")]`; fields with `#[serde(skip)]` (or
//! `skip_serializing` / `skip_deserializing`) are left out, as they are of the encoding.

use crate::attr::skip_value;
use proc_macro2::TokenStream;
use quote::quote;
use syn::{Data, DeriveInput, Fields, GenericParam, LitStr};

pub(crate) fn expand(input: &DeriveInput) -> syn::Result<TokenStream> {
    let mut errors: Option<syn::Error> = None;
    let mut push = |e: syn::Error| match &mut errors {
        Some(all) => all.combine(e),
        None => errors = Some(e),
    };
    for param in &input.generics.params {
        if let GenericParam::Lifetime(lifetime) = param {
            push(syn::Error::new_spanned(
                lifetime,
                "a type with a fingerprint is 'static: values that travel between processes own their data",
            ));
        }
    }
    let ident = &input.ident;
    let name = serde_name(&input.attrs, &mut push).unwrap_or_else(|| ident.to_string());
    let shape = hidden("__shape");
    let body = match &input.data {
        Data::Struct(data) => {
            let fields = fields(&data.fields, &shape, &mut push);
            match &data.fields {
                Fields::Named(_) => quote! {
                    #shape.kind(::procman::schema::Kind::Struct).name(#name);
                    #fields
                },
                Fields::Unnamed(unnamed) if unnamed.unnamed.len() == 1 => quote! {
                    #shape.kind(::procman::schema::Kind::NewtypeStruct).name(#name);
                    #fields
                },
                Fields::Unnamed(_) => quote! {
                    #shape.kind(::procman::schema::Kind::TupleStruct).name(#name);
                    #fields
                },
                Fields::Unit => quote!(#shape.kind(::procman::schema::Kind::UnitStruct).name(#name);),
            }
        }
        Data::Enum(data) => {
            let count = data.variants.len();
            let variants = data.variants.iter().map(|variant| {
                let name = serde_name(&variant.attrs, &mut push).unwrap_or_else(|| variant.ident.to_string());
                let kind = match &variant.fields {
                    Fields::Named(_) => quote!(Struct),
                    Fields::Unnamed(unnamed) if unnamed.unnamed.len() == 1 => quote!(NewtypeStruct),
                    Fields::Unnamed(_) => quote!(Tuple),
                    Fields::Unit => quote!(Unit),
                };
                let fields = fields(&variant.fields, &shape, &mut push);
                quote! {
                    #shape.name(#name).kind(::procman::schema::Kind::#kind);
                    #fields
                }
            });
            quote! {
                #shape.kind(::procman::schema::Kind::Enum).name(#name).len(#count);
                #(#variants)*
            }
        }
        Data::Union(data) => {
            push(syn::Error::new_spanned(
                data.union_token,
                "`#[derive(Schema)]` supports structs and enums, not unions",
            ));
            quote!()
        }
    };
    if let Some(errors) = errors {
        return Err(errors);
    }
    let mut generics = input.generics.clone();
    let params: Vec<_> = generics.type_params().map(|p| p.ident.clone()).collect();
    let where_clause = generics.make_where_clause();
    for param in params {
        where_clause.predicates.push(syn::parse_quote!(#param: ::procman::Schema));
    }
    let (impl_generics, ty_generics, where_clause) = generics.split_for_impl();
    Ok(quote! {
        #[automatically_derived]
        impl #impl_generics ::procman::Schema for #ident #ty_generics #where_clause {
            fn describe(#shape: &mut ::procman::schema::Shape) {
                #body
            }
        }
    })
}

/// The fields that serde encodes: a count, then each one's name (for named fields) and type.
fn fields(fields: &Fields, shape: &syn::Ident, push: &mut impl FnMut(syn::Error)) -> TokenStream {
    let mut kept = Vec::new();
    for field in fields {
        if skipped(&field.attrs, push) {
            continue;
        }
        let ty = &field.ty;
        kept.push(match &field.ident {
            Some(ident) => {
                let name = serde_name(&field.attrs, push).unwrap_or_else(|| ident.to_string());
                quote!(#shape.name(#name).ty::<#ty>();)
            }
            None => quote!(#shape.ty::<#ty>();),
        });
    }
    if matches!(fields, Fields::Unit) {
        return quote!();
    }
    let count = kept.len();
    quote! {
        #shape.len(#count);
        #(#kept)*
    }
}

/// `#[serde(rename = "...")]`, if any.
fn serde_name(attrs: &[syn::Attribute], push: &mut impl FnMut(syn::Error)) -> Option<String> {
    let mut name = None;
    for attr in attrs.iter().filter(|a| a.path().is_ident("serde")) {
        let result = attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("rename") && meta.input.peek(syn::Token![=]) {
                let value: LitStr = meta.value()?.parse()?;
                name = Some(value.value());
            } else {
                skip_value(&meta)?;
            }
            Ok(())
        });
        if let Err(e) = result {
            push(e);
        }
    }
    name
}

/// `#[serde(skip)]`, `#[serde(skip_serializing)]` or `#[serde(skip_deserializing)]`.
fn skipped(attrs: &[syn::Attribute], push: &mut impl FnMut(syn::Error)) -> bool {
    let mut skip = false;
    for attr in attrs.iter().filter(|a| a.path().is_ident("serde")) {
        let result = attr.parse_nested_meta(|meta| {
            if ["skip", "skip_serializing", "skip_deserializing"].iter().any(|k| meta.path.is_ident(k)) {
                skip = true;
            }
            skip_value(&meta)
        });
        if let Err(e) = result {
            push(e);
        }
    }
    skip
}

fn hidden(name: &str) -> syn::Ident {
    syn::Ident::new(name, proc_macro2::Span::mixed_site())
}
