//! Validation: checks the parsed attribute and fn against the macro contract and produces the model
//! that expansion reads. Every error is recorded; nothing stops at the first.

use proc_macro2::Span;
use syn::spanned::Spanned;
use syn::{Expr, Ident, Type};

use crate::ast::{Attr, ToolFn};
use crate::ctxt::Ctxt;

const MAX_NAME_LEN: usize = 128;

pub struct Tool {
    pub name: String,
    pub name_span: Span,
    pub description: String,
    pub permissions: Permissions,
    pub args: Vec<ToolArg>,
    pub output: Output,
    /// A fn that adds keywords to the generated input schema.
    pub refine_schema: Option<syn::ExprPath>,
}

/// `permissions = [...]`: literals and paths to `toolgate::Permission` constants, in order.
#[derive(Default)]
pub struct Permissions {
    pub elements: Vec<PermissionElement>,
    /// The list, where a repeat that only const evaluation can see is reported.
    pub span: Option<Span>,
}

pub enum PermissionElement {
    /// Checked here as an OAuth scope token.
    Literal(syn::LitStr),
    /// Checked by the type checker (is it a `Permission`?) and by const evaluation (its scope).
    Path(syn::ExprPath),
}

impl Permissions {
    pub fn has_paths(&self) -> bool {
        self.elements
            .iter()
            .any(|e| matches!(e, PermissionElement::Path(_)))
    }
}

pub struct ToolArg {
    pub ident: Ident,
    /// The property name in the input schema.
    pub name: String,
    pub ty: Type,
    pub description: Option<syn::LitStr>,
    /// The `Mcp-Param-` header name that mirrors this argument, with the span to point at.
    pub header: Option<(String, Span)>,
    /// Whether the schema lists it as required, when it is a schema argument at all: that is the
    /// type's `toolgate::ToolArgument` impl to say, in the expansion.
    pub required: bool,
}

// One value per macro call: boxing would buy nothing.
#[allow(clippy::large_enum_variant)]
pub enum Output {
    Plain(Type),
    /// `Result<T, E>`, or an alias such as `io::Result<T>` where `E` is not written.
    Result {
        ok: Type,
        err: Option<Type>,
        whole: Type,
    },
}

pub fn validate(cx: &mut Ctxt, attr: &Attr, tool: &ToolFn) -> Option<Tool> {
    let sig = &tool.item.sig;
    if sig.asyncness.is_none() {
        cx.error_spanned_by(
            sig.fn_token,
            "#[mcp_tool] needs an `async fn`: write `async fn`",
        );
    }
    if let Some(constness) = &sig.constness {
        cx.error_spanned_by(constness, "a tool cannot be a `const fn`: remove `const`");
    }
    if let Some(unsafety) = &sig.unsafety {
        cx.error_spanned_by(unsafety, "a tool cannot be an `unsafe fn`: clients call it with no way to uphold its contract; remove `unsafe`");
    }
    if let Some(abi) = &sig.abi {
        cx.error_spanned_by(abi, "a tool cannot have an `extern` ABI: remove it");
    }
    if let Some(variadic) = &sig.variadic {
        cx.error_spanned_by(variadic, "a tool cannot be variadic");
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        cx.error_spanned_by(&sig.generics, "a tool cannot be generic: the runtime must know each argument's type to build its schema; use concrete types");
    }
    if let Some(span) = tool.receiver {
        cx.error_at(span, "#[mcp_tool] goes on free functions, not methods: `self` has no value when a client calls the tool; move the fn out of the impl block and pass state another way");
    }

    let (name, name_span) = tool_name(cx, attr, &sig.ident);
    let description = description(cx, attr, tool);
    let permissions = permissions(cx, attr);
    let args = tool
        .args
        .iter()
        .filter_map(|arg| tool_arg(cx, arg))
        .collect::<Vec<_>>();
    unique_headers(cx, &args);
    let refine_schema = refine_schema(cx, attr);
    let output = output(&sig.output);

    if cx.has_errors() {
        return None;
    }
    Some(Tool {
        name,
        name_span,
        description: description?,
        permissions,
        args,
        output,
        refine_schema,
    })
}

fn refine_schema(cx: &mut Ctxt, attr: &Attr) -> Option<syn::ExprPath> {
    match attr.refine_schema.as_ref()? {
        Expr::Path(path) => Some(path.clone()),
        other => {
            cx.error_spanned_by(
                other,
                "`refine_schema` takes the path of a fn, like `refine_schema = contact_rules`, \
                 that receives the generated input schema as `&mut serde_json::Map<String, \
                 serde_json::Value>`",
            );
            None
        }
    }
}

/// Header names are compared case-insensitively, as HTTP does.
fn unique_headers(cx: &mut Ctxt, args: &[ToolArg]) {
    let mut seen: Vec<(&str, &str)> = Vec::new();
    for arg in args {
        let Some((header, span)) = &arg.header else {
            continue;
        };
        match seen.iter().find(|(h, _)| h.eq_ignore_ascii_case(header)) {
            Some((first_header, first_arg)) => cx.error_at(
                *span,
                format!(
                    "argument `{first_arg}` already uses the header `{first_header}` (header names \
                     ignore case): give each argument its own"
                ),
            ),
            None => seen.push((header, &arg.name)),
        }
    }
}

/// RFC 9110 §5.6.2 `tchar`: what a header field name may hold.
fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

fn string_literal(cx: &mut Ctxt, expr: &Expr, what: &str) -> Option<syn::LitStr> {
    match expr {
        Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Str(s),
            ..
        }) => Some(s.clone()),
        other => {
            cx.error_spanned_by(
                other,
                format!("`{what}` takes a string literal, like `{what} = \"...\"`"),
            );
            None
        }
    }
}

fn tool_name(cx: &mut Ctxt, attr: &Attr, fn_ident: &Ident) -> (String, Span) {
    let (name, span, from_fn) = match &attr.name {
        Some(expr) => match string_literal(cx, expr, "name") {
            Some(lit) => (lit.value(), lit.span(), false),
            None => return (String::new(), expr.span()),
        },
        None => {
            let name = fn_ident.to_string();
            let name = name.strip_prefix("r#").map(str::to_owned).unwrap_or(name);
            (name, fn_ident.span(), true)
        }
    };
    let fix = if from_fn {
        "; set `name = \"...\"` in #[mcp_tool]"
    } else {
        ""
    };
    if name.is_empty() {
        cx.error_at(
            span,
            "the tool name is empty: MCP tool names have 1 to 128 characters",
        );
    } else if name.chars().count() > MAX_NAME_LEN {
        cx.error_at(
            span,
            format!(
                "the tool name has {} characters: MCP allows at most {MAX_NAME_LEN}{fix}",
                name.chars().count()
            ),
        );
    } else if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')))
    {
        cx.error_at(span, format!(
            "the tool name `{name}` contains {bad:?}: MCP tool names use only A-Z, a-z, 0-9, `_`, `-` and `.`{fix}"
        ));
    }
    (name, span)
}

fn description(cx: &mut Ctxt, attr: &Attr, tool: &ToolFn) -> Option<String> {
    match &attr.description {
        Some(expr) => {
            let lit = string_literal(cx, expr, "description")?;
            let text = lit.value().trim().to_owned();
            if text.is_empty() {
                cx.error_spanned_by(&lit, "the description is empty: say what the tool does, for the model that will call it");
                return None;
            }
            Some(text)
        }
        None => match &tool.doc {
            Some(doc) => Some(doc.clone()),
            // A misspelt `description` key is already reported; fixing it fixes this too.
            None if attr.misspelt.contains(&"description") => None,
            None => {
                cx.error_spanned_by(&tool.item.sig.ident, format!(
                    "tool `{}` has no description: add `description = \"...\"` to #[mcp_tool] or a `///` doc comment to the fn",
                    tool.item.sig.ident
                ));
                None
            }
        },
    }
}

fn permissions(cx: &mut Ctxt, attr: &Attr) -> Permissions {
    let Some(expr) = &attr.permissions else {
        return Permissions::default();
    };
    let Expr::Array(array) = expr else {
        cx.error_spanned_by(
            expr,
            "`permissions` takes a list of permissions, like `permissions = [READ, \"tool:write\"]`",
        );
        return Permissions::default();
    };
    if array.elems.is_empty() {
        cx.error_spanned_by(array, "`permissions` is empty: list at least one permission, or remove the key to let any signed-in caller use the tool");
        return Permissions::default();
    }
    let mut permissions = Permissions {
        elements: Vec::new(),
        span: Some(array.bracket_token.span.join()),
    };
    let mut seen: Vec<String> = Vec::new();
    for element in &array.elems {
        let lit = match element {
            Expr::Lit(syn::ExprLit {
                lit: syn::Lit::Str(lit),
                ..
            }) => lit,
            Expr::Path(path) => {
                permissions
                    .elements
                    .push(PermissionElement::Path(path.clone()));
                continue;
            }
            other => {
                cx.error_spanned_by(
                    other,
                    "each permission must be the path of a `toolgate::Permission` constant, like \
                     `READ`, or a string literal, like `\"tool:read\"`",
                );
                continue;
            }
        };
        let value = lit.value();
        if value.is_empty() {
            cx.error_spanned_by(
                lit,
                "a permission cannot be empty: write its name, like `\"tool:read\"`",
            );
        } else if let Some(bad) = value.chars().find(|&c| !is_scope_char(c)) {
            let what = match bad {
                ' ' => {
                    "a space (a space separates permissions in OAuth scopes: list each separately)"
                        .to_owned()
                }
                '"' => "`\"`".to_owned(),
                '\\' => "`\\`".to_owned(),
                c if !c.is_ascii() => format!("the non-ASCII character {c:?}"),
                c => format!("the control character {c:?}"),
            };
            cx.error_spanned_by(lit, format!(
                "the permission {value:?} contains {what}: OAuth scope tokens (RFC 6749 §3.3) use printable ASCII other than space, `\"` and `\\`"
            ));
        } else if seen.contains(&value) {
            cx.error_spanned_by(
                lit,
                format!("the permission {value:?} is listed twice: remove the repeat"),
            );
        } else {
            seen.push(value);
            permissions
                .elements
                .push(PermissionElement::Literal(lit.clone()));
        }
    }
    permissions
}

/// RFC 6749 §3.3: `scope-token = 1*( %x21 / %x23-5B / %x5D-7E )`.
fn is_scope_char(c: char) -> bool {
    matches!(c, '\x21' | '\x23'..='\x5B' | '\x5D'..='\x7E')
}

fn tool_arg(cx: &mut Ctxt, arg: &crate::ast::Arg) -> Option<ToolArg> {
    let ident = match &arg.pat {
        syn::Pat::Ident(p) if p.subpat.is_none() && p.by_ref.is_none() => p.ident.clone(),
        other => {
            cx.error_spanned_by(other, "give this argument a plain name (like `a: i64`): its name is the argument's name in the tool's schema, and a pattern has none");
            return None;
        }
    };
    if let Type::ImplTrait(t) = &arg.ty {
        cx.error_spanned_by(
            t,
            "a tool argument cannot be `impl Trait`: use a concrete type",
        );
        return None;
    }
    if let Type::Reference(r) = &arg.ty {
        cx.error_spanned_by(r, "a tool argument cannot be a reference: arguments are decoded from JSON into owned values; use an owned type such as `String`");
        return None;
    }
    let name = ident.to_string();
    let name = name.strip_prefix("r#").map(str::to_owned).unwrap_or(name);
    let header = arg.header.as_ref().and_then(|lit| {
        let value = lit.value();
        if let Some(bad) = value.chars().find(|c| !is_token_char(*c)) {
            cx.error_spanned_by(lit, format!("`{bad}` cannot be in an HTTP header name: use letters, digits and `-`, like `header = \"Region\"`"));
            None
        } else {
            Some((value, lit.span()))
        }
    });
    Some(ToolArg {
        ident,
        name,
        ty: arg.ty.clone(),
        description: arg.description.clone(),
        header,
        required: !is_option(&arg.ty),
    })
}

fn last_segment(ty: &Type) -> Option<&syn::PathSegment> {
    match ty {
        Type::Path(p) if p.qself.is_none() => p.path.segments.last(),
        Type::Group(g) => last_segment(&g.elem),
        Type::Paren(p) => last_segment(&p.elem),
        _ => None,
    }
}

fn generic_types(segment: &syn::PathSegment) -> Vec<&Type> {
    match &segment.arguments {
        syn::PathArguments::AngleBracketed(args) => args
            .args
            .iter()
            .filter_map(|a| match a {
                syn::GenericArgument::Type(t) => Some(t),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

fn is_option(ty: &Type) -> bool {
    last_segment(ty).is_some_and(|s| s.ident == "Option")
}

fn output(ret: &syn::ReturnType) -> Output {
    let ty = match ret {
        syn::ReturnType::Default => return Output::Plain(syn::parse_quote!(())),
        syn::ReturnType::Type(_, ty) => (**ty).clone(),
    };
    if let Some(segment) = last_segment(&ty)
        && segment.ident == "Result"
    {
        let types = generic_types(segment);
        if let Some(ok) = types.first() {
            return Output::Result {
                ok: (*ok).clone(),
                err: types.get(1).map(|e| (*e).clone()),
                whole: ty.clone(),
            };
        }
    }
    Output::Plain(ty)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_characters_follow_rfc_6749() {
        assert!("tool:get_user_info".chars().all(is_scope_char));
        assert!(
            "read:a/b-c.d~e!#$%&'()*+,;<=>?@[]^_`{|}"
                .chars()
                .all(is_scope_char)
        );
        for bad in [' ', '"', '\\', 'é', '\n', '\x7f'] {
            assert!(!is_scope_char(bad), "{bad:?} must be refused");
        }
    }
}
