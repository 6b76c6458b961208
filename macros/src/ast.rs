//! Parsing: turns the attribute and the fn into plain data, recording syntax errors. Emits no tokens.

use proc_macro2::{Span, TokenStream};
use syn::parse::{ParseStream, Parser};
use syn::spanned::Spanned;
use syn::{Expr, Ident, LitStr, Token};

use crate::ctxt::Ctxt;

pub const KEYS: [&str; 4] = ["name", "description", "permissions", "refine_schema"];

/// `#[mcp_tool(...)]` as written.
#[derive(Default)]
pub struct Attr {
    pub name: Option<Expr>,
    pub description: Option<Expr>,
    pub permissions: Option<Expr>,
    pub refine_schema: Option<Expr>,
    /// Valid keys that unknown keys looked like, so validation does not also report them missing.
    pub misspelt: Vec<&'static str>,
}

/// One fn argument.
pub struct Arg {
    pub pat: syn::Pat,
    pub ty: syn::Type,
    pub description: Option<LitStr>,
    /// `#[arg(header = "...")]`: the HTTP header (`Mcp-Param-<header>`) that mirrors the argument.
    pub header: Option<LitStr>,
}

/// The annotated item, when it is a fn.
pub struct ToolFn {
    /// The fn with our `#[arg]` attributes removed, exactly as it will be emitted.
    pub item: syn::ItemFn,
    pub args: Vec<Arg>,
    pub receiver: Option<Span>,
    pub doc: Option<String>,
}

pub fn parse_attr(cx: &mut Ctxt, tokens: TokenStream) -> Attr {
    let mut attr = Attr::default();
    let parser = |input: ParseStream| -> syn::Result<()> {
        while !input.is_empty() {
            let key: Ident = input.call(syn::ext::IdentExt::parse_any)?;
            if !input.peek(Token![=]) {
                cx.error_spanned_by(
                    &key,
                    format!("expected `{key} = ...`: every key of #[mcp_tool] takes a value"),
                );
                return Ok(());
            }
            input.parse::<Token![=]>()?;
            let value: Expr = input.parse()?;
            let slot = match key.to_string().as_str() {
                "name" => Some(&mut attr.name),
                "description" => Some(&mut attr.description),
                "permissions" => Some(&mut attr.permissions),
                "refine_schema" => Some(&mut attr.refine_schema),
                other => {
                    let nearest = nearest_key(other);
                    cx.error_spanned_by(&key, unknown_key_message(other, nearest));
                    attr.misspelt.extend(nearest);
                    None
                }
            };
            if let Some(slot) = slot {
                if slot.is_some() {
                    cx.error_spanned_by(&key, format!("`{key}` is given twice: keep one"));
                } else {
                    *slot = Some(value);
                }
            }
            if input.is_empty() {
                break;
            }
            input.parse::<Token![,]>()?;
        }
        Ok(())
    };
    if let Err(error) = parser.parse2(tokens) {
        cx.push(error);
    }
    attr
}

fn nearest_key(key: &str) -> Option<&'static str> {
    KEYS.iter()
        .map(|k| (strsim::jaro_winkler(k, key), *k))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, k)| k)
}

fn unknown_key_message(key: &str, nearest: Option<&str>) -> String {
    match nearest {
        Some(k) => format!("unknown key `{key}`: did you mean `{k}`?"),
        None => format!(
            "unknown key `{key}`: #[mcp_tool] takes `name`, `description`, `permissions` and `refine_schema`"
        ),
    }
}

/// Parses the item. `None` means it is not a fn; the error is recorded.
pub fn parse_item(cx: &mut Ctxt, tokens: TokenStream) -> Option<ToolFn> {
    let item: syn::Item = match syn::parse2(tokens) {
        Ok(item) => item,
        Err(error) => {
            cx.push(error);
            return None;
        }
    };
    let mut item = match item {
        syn::Item::Fn(item) => item,
        other => {
            cx.error_spanned_by(
                item_keyword(&other),
                format!(
                    "#[mcp_tool] goes on an `async fn`, not on {}",
                    item_kind(&other)
                ),
            );
            return None;
        }
    };
    let doc = doc_comment(&item.attrs);
    let mut args = Vec::new();
    let mut receiver = None;
    for input in &mut item.sig.inputs {
        match input {
            syn::FnArg::Receiver(r) => receiver = Some(r.span()),
            syn::FnArg::Typed(typed) => {
                let ArgAttrs {
                    description,
                    header,
                } = take_arg_attrs(cx, &mut typed.attrs);
                args.push(Arg {
                    pat: (*typed.pat).clone(),
                    ty: (*typed.ty).clone(),
                    description,
                    header,
                });
            }
        }
    }
    Some(ToolFn {
        item,
        args,
        receiver,
        doc,
    })
}

#[derive(Default)]
struct ArgAttrs {
    description: Option<LitStr>,
    header: Option<LitStr>,
}

/// Removes `#[arg(...)]` from a parameter and returns its keys.
fn take_arg_attrs(cx: &mut Ctxt, attrs: &mut Vec<syn::Attribute>) -> ArgAttrs {
    let mut found = ArgAttrs::default();
    let mut kept = Vec::new();
    for attr in attrs.drain(..) {
        if !attr.path().is_ident("arg") {
            kept.push(attr);
            continue;
        }
        let result = attr.parse_nested_meta(|meta| {
            let (slot, empty_message) = if meta.path.is_ident("description") {
                (
                    &mut found.description,
                    "the argument's description is empty: write one or remove it",
                )
            } else if meta.path.is_ident("header") {
                (
                    &mut found.header,
                    "the header name is empty: name the `Mcp-Param-` header, like `header = \"Region\"`",
                )
            } else {
                return Err(meta.error(
                    "unknown key in #[arg]: the keys are `description = \"...\"` and `header = \"...\"`",
                ));
            };
            let value: LitStr = meta.value()?.parse()?;
            let key = meta.path.get_ident().map(ToString::to_string).unwrap_or_default();
            if slot.is_some() {
                cx.error_spanned_by(&meta.path, format!("`{key}` is given twice: keep one"));
            } else if value.value().trim().is_empty() {
                cx.error_spanned_by(&value, empty_message);
            } else {
                *slot = Some(value);
            }
            Ok(())
        });
        if let Err(error) = result {
            cx.push(error);
        }
    }
    *attrs = kept;
    found
}

fn doc_comment(attrs: &[syn::Attribute]) -> Option<String> {
    let lines: Vec<String> = attrs
        .iter()
        .filter(|a| a.path().is_ident("doc"))
        .filter_map(|a| match &a.meta {
            syn::Meta::NameValue(nv) => match &nv.value {
                Expr::Lit(syn::ExprLit {
                    lit: syn::Lit::Str(s),
                    ..
                }) => Some(s.value()),
                _ => None,
            },
            _ => None,
        })
        .map(|line| line.strip_prefix(' ').map(str::to_owned).unwrap_or(line))
        .collect();
    let text = lines.join("\n").trim().to_owned();
    (!text.is_empty()).then_some(text)
}

fn item_kind(item: &syn::Item) -> &'static str {
    match item {
        syn::Item::Struct(_) => "a struct",
        syn::Item::Enum(_) => "an enum",
        syn::Item::Impl(_) => "an impl block: put it on each fn outside the impl",
        syn::Item::Mod(_) => "a module",
        syn::Item::Trait(_) => "a trait",
        syn::Item::Const(_) | syn::Item::Static(_) => "a constant",
        syn::Item::Type(_) => "a type alias",
        syn::Item::Use(_) => "a `use`",
        _ => "this item",
    }
}

fn item_keyword(item: &syn::Item) -> TokenStream {
    use quote::ToTokens;
    match item {
        syn::Item::Struct(s) => s.struct_token.to_token_stream(),
        syn::Item::Enum(e) => e.enum_token.to_token_stream(),
        syn::Item::Impl(i) => i.impl_token.to_token_stream(),
        syn::Item::Mod(m) => m.mod_token.to_token_stream(),
        syn::Item::Trait(t) => t.trait_token.to_token_stream(),
        other => other.to_token_stream(),
    }
}

#[cfg(test)]
mod tests {
    //! Property tests: whatever tokens a user writes in `#[mcp_tool(...)]`, the macro answers with
    //! compile errors or with an expansion that parses as Rust; it never panics.

    use proc_macro2::{Delimiter, Group, Ident, Literal, Punct, Spacing, TokenStream, TokenTree};
    use proptest::prelude::*;
    use quote::quote;

    const WORDS: &[&str] = &[
        "name",
        "description",
        "permissions",
        "refine_schema",
        "permission",
        "descripton",
        "READ",
        "crate",
        "self",
        "super",
        "toolgate",
        "Permission",
        "fn",
        "async",
        "true",
        "_",
        "x",
    ];
    const PUNCT: &[char] = &[
        '=', ',', ';', ':', '#', '!', '.', '&', '<', '>', '-', '+', '*', '/', '@', '?', '|', '~',
    ];

    fn leaf() -> impl Strategy<Value = TokenTree> {
        prop_oneof![
            prop::sample::select(WORDS)
                .prop_map(|w| Ident::new(w, proc_macro2::Span::call_site()).into()),
            "[a-z][a-z0-9_]{0,8}".prop_map(|w| {
                // Keywords that cannot be identifiers are left to the fixed list above.
                syn::parse_str::<Ident>(&w)
                    .unwrap_or_else(|_| Ident::new("w", proc_macro2::Span::call_site()))
                    .into()
            }),
            any::<String>().prop_map(|s| Literal::string(&s).into()),
            "[ -~]{0,12}".prop_map(|s| Literal::string(&s).into()),
            any::<i64>().prop_map(|n| Literal::i64_unsuffixed(n).into()),
            any::<char>().prop_map(|c| Literal::character(c).into()),
            (prop::sample::select(PUNCT), any::<bool>()).prop_map(|(c, joint)| {
                let spacing = if joint {
                    Spacing::Joint
                } else {
                    Spacing::Alone
                };
                Punct::new(c, spacing).into()
            }),
        ]
    }

    fn tree() -> impl Strategy<Value = TokenTree> {
        leaf().prop_recursive(4, 48, 6, |inner| {
            (
                prop::sample::select(
                    &[
                        Delimiter::Parenthesis,
                        Delimiter::Bracket,
                        Delimiter::Brace,
                        Delimiter::None,
                    ][..],
                ),
                prop::collection::vec(inner, 0..6),
            )
                .prop_map(|(delimiter, trees)| {
                    Group::new(delimiter, trees.into_iter().collect()).into()
                })
        })
    }

    fn stream() -> impl Strategy<Value = TokenStream> {
        prop::collection::vec(tree(), 0..10).prop_map(|trees| trees.into_iter().collect())
    }

    /// `key = value, ...` with real and misspelt keys and arbitrary values: reaches validation.
    fn attribute() -> impl Strategy<Value = TokenStream> {
        let pair = (prop::sample::select(WORDS), stream()).prop_map(|(key, value)| {
            let key = Ident::new(key, proc_macro2::Span::call_site());
            quote!(#key = #value)
        });
        prop::collection::vec(pair, 0..5).prop_map(|pairs| quote!(#(#pairs),*))
    }

    fn item() -> impl Strategy<Value = TokenStream> {
        prop_oneof![
            Just(quote!(
                #[doc = " Adds."]
                async fn add(a: i64, b: Option<String>) -> i64 {
                    a
                }
            )),
            Just(quote!(
                async fn f(token: toolgate::AccessToken, #[arg(description = "n")] n: u8) {}
            )),
            stream(),
        ]
    }

    /// The macro's answer is either errors, or Rust that parses.
    fn check(attr: TokenStream, item: TokenStream) -> Result<(), TestCaseError> {
        let out = crate::expand::mcp_tool(attr, item);
        if !out.to_string().contains("compile_error") {
            prop_assert!(
                syn::parse2::<syn::File>(out.clone()).is_ok(),
                "an expansion without errors must parse: {out}"
            );
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        #[test]
        fn any_attribute_tokens_give_errors_or_an_expansion(attr in stream(), item in item()) {
            check(attr, item)?;
        }

        #[test]
        fn any_key_value_list_gives_errors_or_an_expansion(attr in attribute(), item in item()) {
            check(attr, item)?;
        }
    }
}
