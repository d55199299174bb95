//! Attribute macros for bindery: `#[processor]`, `#[sink]`, `#[source]`.
//!
//! Depend on `bindery` and write `#[bindery::processor(...)]`; this crate is an implementation
//! detail re-exported there. Every misuse is a compile error pointing at the offending code.

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::{quote, quote_spanned};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{
    Expr, ExprLit, FnArg, GenericArgument, ItemFn, Lit, LitStr, MetaNameValue, PathArguments, ReturnType, Token, Type,
};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Processor,
    Sink,
    Source,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Processor => "processor",
            Kind::Sink => "sink",
            Kind::Source => "source",
        }
    }

    fn allowed(self) -> &'static [&'static str] {
        match self {
            Kind::Processor => &["input", "output", "group"],
            Kind::Sink => &["input", "group"],
            Kind::Source => &["output", "interval"],
        }
    }
}

/// Collects every error instead of stopping at the first (serde_derive's habit).
#[derive(Default)]
struct Errors(Option<syn::Error>);

impl Errors {
    fn push(&mut self, e: syn::Error) {
        match &mut self.0 {
            Some(all) => all.combine(e),
            None => self.0 = Some(e),
        }
    }
    fn at(&mut self, span: Span, msg: impl std::fmt::Display) {
        self.push(syn::Error::new(span, msg));
    }
    /// An error covering all of `node` (a whole type, not just its first token).
    fn on(&mut self, node: impl quote::ToTokens, msg: impl std::fmt::Display) {
        self.push(syn::Error::new_spanned(node, msg));
    }
}

/// A processor: consumes one message from its input binding and publishes what it returns to
/// its output binding.
///
/// Attributes (all optional): `input` (binding name, default `<fn>-in-0`), `output` (default
/// `<fn>-out-0`), `group` (consumer group; config may override).
///
/// The argument is the payload as `T: Deserialize`, `Message<T>`, `String` or `Bytes`, optionally
/// followed or preceded by a `Context`. The return is `T`, `Message<T>`, `Option<_>` (filter),
/// `Vec<_>` (split), or any of these in a `Result<_, E>`; an `Err` is retried, then dead-lettered.
///
/// ```
/// use bindery::prelude::*;
/// # #[derive(Deserialize)] struct Order { id: u64, cents: u64 }
/// # #[derive(Serialize)] struct Invoice { order: u64, cents: u64 }
/// #[bindery::processor(input = "orders", output = "invoices")]
/// async fn bill(order: Order) -> Result<Invoice, bindery::HandlerError> {
///     Ok(Invoice { order: order.id, cents: order.cents })
/// }
/// # fn main() {}
/// ```
#[proc_macro_attribute]
pub fn processor(attr: TokenStream, item: TokenStream) -> TokenStream {
    expand(Kind::Processor, attr.into(), item.into()).into()
}

/// A sink: consumes messages from its input binding.
///
/// Attributes (all optional): `input` (default `<fn>-in-0`), `group`. Returns `()` or
/// `Result<(), E>`.
///
/// ```
/// use bindery::prelude::*;
/// # #[derive(Deserialize)] struct Invoice { order: u64 }
/// #[bindery::sink(input = "invoices", group = "audit")]
/// async fn audit(msg: bindery::Message<Invoice>) -> anyhow::Result<()> {
///     println!("invoice for order {} ({:?})", msg.payload().order, msg.headers().correlation_id());
///     Ok(())
/// }
/// # fn main() {}
/// ```
#[proc_macro_attribute]
pub fn sink(attr: TokenStream, item: TokenStream) -> TokenStream {
    expand(Kind::Sink, attr.into(), item.into()).into()
}

/// A polled source: called every `interval` (a human duration, default `"1s"`); what it returns
/// is published to `output` (default `<fn>-out-0`). Return `Option<T>` to skip a tick.
///
/// ```
/// use bindery::prelude::*;
/// #[derive(Serialize)] struct Tick { at_ms: u128 }
/// #[bindery::source(output = "ticks", interval = "1s")]
/// async fn tick() -> Tick {
///     Tick { at_ms: std::time::UNIX_EPOCH.elapsed().map(|d| d.as_millis()).unwrap_or(0) }
/// }
/// # fn main() {}
/// ```
#[proc_macro_attribute]
pub fn source(attr: TokenStream, item: TokenStream) -> TokenStream {
    expand(Kind::Source, attr.into(), item.into()).into()
}

struct Attrs {
    input: Option<LitStr>,
    output: Option<LitStr>,
    group: Option<LitStr>,
    interval_ms: Option<u64>,
}

fn parse_attrs(kind: Kind, attr: TokenStream2, errors: &mut Errors) -> Attrs {
    let mut attrs = Attrs { input: None, output: None, group: None, interval_ms: None };
    let parser = Punctuated::<MetaNameValue, Token![,]>::parse_terminated;
    let list = match syn::parse::Parser::parse2(parser, attr) {
        Ok(list) => list,
        Err(e) => {
            errors.at(
                e.span(),
                format!("expected `key = \"value\"` pairs, e.g. #[bindery::{}(input = \"orders\")]", kind.name()),
            );
            return attrs;
        }
    };
    let mut seen: Vec<String> = Vec::new();
    for nv in list {
        let key = nv.path.get_ident().map(|i| i.to_string()).unwrap_or_default();
        if !kind.allowed().contains(&key.as_str()) {
            errors.at(
                nv.path.span(),
                format!(
                    "unknown attribute `{}` for #[bindery::{}]; expected one of: {}",
                    path_text(&nv.path),
                    kind.name(),
                    kind.allowed().join(", ")
                ),
            );
            continue;
        }
        if seen.contains(&key) {
            errors.at(nv.path.span(), format!("`{key}` is given twice"));
            continue;
        }
        seen.push(key.clone());
        let lit = match &nv.value {
            Expr::Lit(ExprLit { lit: Lit::Str(s), .. }) => s.clone(),
            other => {
                errors.at(other.span(), format!("`{key}` takes a string literal, e.g. {key} = \"...\""));
                continue;
            }
        };
        if lit.value().trim().is_empty() {
            errors.at(lit.span(), format!("`{key}` must not be empty"));
            continue;
        }
        match key.as_str() {
            "input" => attrs.input = Some(lit),
            "output" => attrs.output = Some(lit),
            "group" => attrs.group = Some(lit),
            "interval" => match humantime::parse_duration(&lit.value()) {
                Ok(d) if d.as_millis() > 0 => attrs.interval_ms = Some(d.as_millis() as u64),
                Ok(_) => errors.at(lit.span(), "`interval` must be at least 1ms"),
                Err(e) => errors.at(
                    lit.span(),
                    format!("`interval` is not a duration ({e}); write e.g. \"250ms\", \"1s\", \"5m\""),
                ),
            },
            _ => {}
        }
    }
    attrs
}

fn path_text(path: &syn::Path) -> String {
    path.segments.iter().map(|s| s.ident.to_string()).collect::<Vec<_>>().join("::")
}

/// The last path segment's name and its generic type arguments.
fn last_segment(ty: &Type) -> Option<(String, Vec<&Type>)> {
    let Type::Path(tp) = ty else { return None };
    if tp.qself.is_some() {
        return None;
    }
    let seg = tp.path.segments.last()?;
    let args = match &seg.arguments {
        PathArguments::AngleBracketed(a) => a
            .args
            .iter()
            .filter_map(|g| match g {
                GenericArgument::Type(t) => Some(t),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    Some((seg.ident.to_string(), args))
}

fn is_named(ty: &Type, name: &str) -> bool {
    matches!(last_segment(ty), Some((n, args)) if n == name && args.is_empty())
}

fn is_unit(ty: &Type) -> bool {
    matches!(ty, Type::Tuple(t) if t.elems.is_empty())
}

/// How the payload argument is produced from the invocation.
fn decode_arg(ty: &Type, errors: &mut Errors) -> TokenStream2 {
    let span = ty.span();
    match ty {
        Type::Path(_) => {}
        Type::Reference(_) => {
            errors
                .at(span, "handler arguments are owned: take `T`, `Message<T>`, `String` or `Bytes`, not a reference");
            return quote!(());
        }
        _ => {
            errors.at(
                span,
                "unsupported argument type; expected `T: Deserialize`, `Message<T>`, `String`, `Bytes` or `Context`",
            );
            return quote!(());
        }
    }
    if is_named(ty, "Bytes") {
        return quote_spanned!(span=> __inv.bytes());
    }
    if is_named(ty, "String") {
        return quote_spanned!(span=> __inv.text()?);
    }
    if let Some((name, args)) = last_segment(ty)
        && name == "Message"
    {
        {
            let Some(inner) = args.first() else {
                errors.on(ty, "`Message` needs its payload type: `Message<T>`");
                return quote!(());
            };
            if is_named(inner, "Bytes") {
                return quote_spanned!(span=> ::bindery::__private::Message::from_parts(__inv.bytes(), __inv.headers()));
            }
            if is_named(inner, "String") {
                return quote_spanned!(span=> ::bindery::__private::Message::from_parts(__inv.text()?, __inv.headers()));
            }
            return quote_spanned!(span=> __inv.decode_message::<#inner>()?);
        }
    }
    quote_spanned!(span=> __inv.decode::<#ty>()?)
}

enum OutShape {
    None,
    /// One item; `message` when it is a `Message<_>`.
    One {
        message: bool,
    },
    /// `Option<_>` or `Vec<_>` of items.
    Many {
        message: bool,
    },
}

/// The output's shape and its payload type (for spans and the `Bytes` pass-through).
fn out_shape(ty: &Type) -> (OutShape, Option<&Type>) {
    if is_unit(ty) {
        return (OutShape::None, None);
    }
    match last_segment(ty) {
        Some((n, args)) if n == "Message" => (OutShape::One { message: true }, args.first().copied()),
        Some((n, args)) if (n == "Option" || n == "Vec") && args.len() == 1 => match last_segment(args[0]) {
            Some((inner, inner_args)) if inner == "Message" => {
                (OutShape::Many { message: true }, inner_args.first().copied())
            }
            _ => (OutShape::Many { message: false }, Some(args[0])),
        },
        _ => (OutShape::One { message: false }, Some(ty)),
    }
}

fn expand(kind: Kind, attr: TokenStream2, item: TokenStream2) -> TokenStream2 {
    let mut errors = Errors::default();
    let func: ItemFn = match syn::parse2(item.clone()) {
        Ok(f) => f,
        Err(e) => {
            let err = syn::Error::new(e.span(), format!("#[bindery::{}] goes on an `async fn`", kind.name()))
                .into_compile_error();
            return quote!(#err #item);
        }
    };
    let attrs = parse_attrs(kind, attr, &mut errors);
    let sig = &func.sig;
    if sig.asyncness.is_none() {
        errors.at(sig.fn_token.span(), format!("#[bindery::{}] needs an `async fn`", kind.name()));
    }
    if !sig.generics.params.is_empty() {
        errors.on(&sig.generics, "handlers cannot be generic: bindery must know the payload type");
    }
    if let Some(v) = &sig.variadic {
        errors.at(v.span(), "handlers cannot be variadic");
    }

    let fn_name = &sig.ident;
    let name = fn_name.to_string();
    let mut call_args = Vec::new();
    let mut decode = Vec::new();
    let mut payload_seen = false;
    let mut context_seen = false;
    for (i, arg) in sig.inputs.iter().enumerate() {
        let ty = match arg {
            FnArg::Receiver(r) => {
                errors.on(r, "handlers are free functions, not methods");
                continue;
            }
            FnArg::Typed(pt) => &*pt.ty,
        };
        let var = syn::Ident::new(&format!("__arg{i}"), Span::call_site());
        if is_named(ty, "Context") {
            if context_seen {
                errors.on(ty, "only one `Context` argument is allowed");
            }
            context_seen = true;
            decode.push(quote_spanned!(ty.span()=> let #var: #ty = __inv.context();));
        } else {
            if kind == Kind::Source {
                errors.at(
                    ty.span(),
                    "a source takes no payload argument (only an optional `Context`); it produces messages",
                );
                continue;
            }
            if payload_seen {
                errors.at(ty.span(), "a handler takes one payload argument (plus an optional `Context`)");
                continue;
            }
            payload_seen = true;
            let d = decode_arg(ty, &mut errors);
            decode.push(quote!(let #var = #d;));
        }
        call_args.push(var);
    }
    if kind != Kind::Source && !payload_seen && !sig.inputs.iter().any(|a| matches!(a, FnArg::Receiver(_))) {
        errors.at(
            sig.paren_token.span.join(),
            format!("a {} needs its input: one argument of type `T`, `Message<T>`, `String` or `Bytes`", kind.name()),
        );
    }

    // The return type: unwrap `Result<_, E>`, then decide how outputs are built.
    let (is_result, inner): (bool, Option<Type>) = match &sig.output {
        ReturnType::Default => (false, None),
        ReturnType::Type(_, ty) => match last_segment(ty) {
            Some((n, args)) if n == "Result" && !args.is_empty() => (true, Some(args[0].clone())),
            _ => (false, Some((**ty).clone())),
        },
    };
    let (shape, payload_ty) = match inner.as_ref() {
        Some(t) => out_shape(t),
        None => (OutShape::None, None),
    };
    let ret_span = match &sig.output {
        ReturnType::Default => sig.ident.span(),
        ReturnType::Type(_, ty) => ty.span(),
    };
    // Type errors about the output (not `Serialize`) land on the payload type itself.
    let payload_span = payload_ty.map(|t| t.span()).unwrap_or(ret_span);
    let raw_bytes = payload_ty.is_some_and(|t| is_named(t, "Bytes"));
    // `String` payloads are text as they are, in both directions (a `String` argument gets the
    // payload's text): never re-encoded, so a chain of processors does not add JSON quotes.
    let raw_text = payload_ty.is_some_and(|t| is_named(t, "String"));
    match (kind, &shape) {
        (Kind::Sink, OutShape::None) => {}
        (Kind::Sink, _) => errors.on(
            &sig.output,
            "a sink returns `()` or `Result<(), E>`; use #[bindery::processor] to publish results",
        ),
        (Kind::Processor | Kind::Source, OutShape::None) => errors.at(
            ret_span,
            format!("a {} must return what it publishes (`T`, `Message<T>`, `Option<T>`, `Vec<T>`); use #[bindery::sink] for handlers without output", kind.name()),
        ),
        _ => {}
    }
    if let Some(e) = errors.0 {
        let err = e.into_compile_error();
        return quote!(#func #err);
    }

    let unwrap = if is_result {
        quote_spanned!(ret_span=> let __ret = match __ret { Ok(v) => v, Err(e) => return Err(::bindery::__private::failure(e)) };)
    } else {
        quote!()
    };
    let (one, many) = if raw_bytes {
        ("output_bytes", "outputs_bytes")
    } else if raw_text {
        ("output_text", "outputs_text")
    } else {
        ("output", "outputs")
    };
    // The method names carry the payload's span so a missing `Serialize` points at the user's type.
    let (one, many) = (syn::Ident::new(one, payload_span), syn::Ident::new(many, payload_span));
    let outputs = match shape {
        OutShape::None => quote!({
            let () = __ret;
            Ok(::bindery::__private::Outputs::none())
        }),
        OutShape::One { message: false } => {
            quote_spanned!(payload_span=> __inv.#one(::bindery::__private::Message::new(__ret)))
        }
        OutShape::One { message: true } => quote_spanned!(payload_span=> __inv.#one(__ret)),
        OutShape::Many { message: false } => quote_spanned!(payload_span=>
            __inv.#many(::std::iter::IntoIterator::into_iter(__ret).map(::bindery::__private::Message::new))
        ),
        OutShape::Many { message: true } => quote_spanned!(payload_span=> __inv.#many(__ret)),
    };

    let lit = |s: String| LitStr::new(&s, Span::call_site());
    let opt = |v: Option<LitStr>| match v {
        Some(l) => quote!(::core::option::Option::Some(#l)),
        None => quote!(::core::option::Option::None),
    };
    let (input, output, kind_tokens) = match kind {
        Kind::Processor => (
            Some(attrs.input.unwrap_or_else(|| lit(format!("{name}-in-0")))),
            Some(attrs.output.unwrap_or_else(|| lit(format!("{name}-out-0")))),
            quote!(::bindery::__private::HandlerKind::Processor),
        ),
        Kind::Sink => (
            Some(attrs.input.unwrap_or_else(|| lit(format!("{name}-in-0")))),
            None,
            quote!(::bindery::__private::HandlerKind::Sink),
        ),
        Kind::Source => (
            None,
            Some(attrs.output.unwrap_or_else(|| lit(format!("{name}-out-0")))),
            quote!(::bindery::__private::HandlerKind::Source),
        ),
    };
    let interval = match (kind, attrs.interval_ms) {
        (Kind::Source, Some(ms)) => quote!(::core::option::Option::Some(#ms)),
        (Kind::Source, None) => quote!(::core::option::Option::Some(1000u64)),
        _ => quote!(::core::option::Option::None),
    };
    let input = opt(input);
    let output = opt(output);
    let group = opt(attrs.group);
    let name_lit = lit(name);

    quote! {
        #func

        const _: () = {
            #[allow(clippy::all, clippy::pedantic)]
            fn __bindery_build() -> ::bindery::__private::HandlerFn {
                ::bindery::__private::handler_fn(|__inv: ::bindery::__private::Invocation| async move {
                    #(#decode)*
                    let __ret = #fn_name(#(#call_args),*).await;
                    #unwrap
                    #outputs
                })
            }
            ::bindery::__private::inventory::submit! {
                ::bindery::__private::Registration {
                    name: #name_lit,
                    kind: #kind_tokens,
                    input: #input,
                    output: #output,
                    group: #group,
                    interval_ms: #interval,
                    module: ::core::module_path!(),
                    build: __bindery_build,
                }
            }
        };
    }
}
