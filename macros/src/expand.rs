//! Expansion: the user's fn unchanged, plus its registration and the wrapper the runtime calls.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;

use crate::ast;
use crate::ctxt::Ctxt;
use crate::valid::{self, Output, PermissionElement, Permissions, Tool};

/// The whole macro as a `proc_macro2` function, so it can be unit-tested.
pub fn mcp_tool(attr: TokenStream, item: TokenStream) -> TokenStream {
    let mut cx = Ctxt::default();
    let parsed_attr = ast::parse_attr(&mut cx, attr);
    let Some(tool_fn) = ast::parse_item(&mut cx, item.clone()) else {
        // Not a fn: keep the item so the rest of the crate still compiles, and report only the misuse.
        let errors = cx.into_compile_errors();
        return quote!(#errors #item);
    };
    let tool = valid::validate(&mut cx, &parsed_attr, &tool_fn);
    let user_fn = &tool_fn.item;
    match tool {
        Some(tool) if !cx.has_errors() => expand(&tool, user_fn),
        _ => {
            // The fn is still emitted, so one mistake gives one error, not a cascade at every caller.
            let errors = cx.into_compile_errors();
            quote!(#errors #user_fn)
        }
    }
}

fn expand(tool: &Tool, user_fn: &syn::ItemFn) -> TokenStream {
    let fn_ident = &user_fn.sig.ident;
    let vis = &user_fn.vis;
    let name = &tool.name;
    let description = &tool.description;
    let permissions = permissions(&tool.permissions);
    let fn_name = fn_ident.to_string();
    // Reads as the fix when rustc reports it "defined multiple times" at both name literals.
    let name_guard = format_ident!(
        "mcp_tool_name__{}__must_be_unique",
        encode_name(name),
        span = tool.name_span
    );
    let name_guard = quote_spanned! {tool.name_span=>
        #[doc(hidden)]
        #[allow(non_upper_case_globals, dead_code)]
        const #name_guard: () = ();
    };

    // Each argument's `ToolArgument` impl, not its name, decides whether it is in the schema.
    let schema_args = tool.args.iter().map(|arg| {
        let ty = &arg.ty;
        let arg_name = &arg.name;
        let required = arg.required;
        let description = match &arg.description {
            Some(d) => quote!(::core::option::Option::Some(#d)),
            None => quote!(::core::option::Option::None),
        };
        let describe =
            quote_spanned!(ty.span()=> <#ty as ::toolgate::__private::ToolArgument<_>>::describe);
        // A header mirrors one plain value; the bound check says so at the argument's type.
        let header = arg.header.as_ref().map(|(header, _)| {
            let check = quote_spanned! {ty.span()=>
                ::toolgate::__private::assert_header_argument::<#ty>();
            };
            quote! {
                #check
                __toolgate_schema.header(#arg_name, #header);
            }
        });
        quote! {
            #describe(&mut __toolgate_schema, #arg_name, #description, #required);
            #header
        }
    });
    // A description on an injected argument would be silently dropped: refuse it, there.
    let described = tool.args.iter().filter_map(|arg| {
        let ty = &arg.ty;
        let description = arg.description.as_ref()?;
        Some(quote_spanned! {description.span()=>
            const _: () = ::toolgate::__private::assert_described_argument(
                <#ty as ::toolgate::__private::ToolArgument<_>>::IN_SCHEMA,
            );
        })
    });
    let refine = tool.refine_schema.as_ref().map(|path| {
        let refine = quote_spanned! {path.span()=>
            let __toolgate_refine: fn(&mut ::toolgate::__private::JsonObject) = #path;
        };
        quote! {
            #refine
            __toolgate_refine(&mut __toolgate_finished);
        }
    });
    let arguments = tool.args.iter().map(|arg| {
        let ty = &arg.ty;
        let arg_name = &arg.name;
        quote!((#arg_name, <#ty as ::toolgate::__private::ToolArgument<_>>::IN_SCHEMA))
    });
    let bindings: Vec<_> = tool
        .args
        .iter()
        .map(|arg| format_ident!("__toolgate_{}", arg.ident))
        .collect();
    let extract = tool.args.iter().zip(&bindings).map(|(arg, binding)| {
        let ty = &arg.ty;
        let arg_name = &arg.name;
        let value = quote_spanned! {ty.span()=>
            <#ty as ::toolgate::__private::ToolArgument<_>>::extract(&__toolgate_call, #arg_name)
        };
        quote!(let #binding: #ty = #value?;)
    });
    let (output_schema, convert) = output(&tool.output);
    let arg_count = tool.args.len();
    // Spanned at the fn's name, so a future that is not `Send` is reported there, with rustc's note
    // on the value held across an await, rather than deep inside the boxing.
    let handler_body = quote! {
        // The guard runs before any argument is read, so no path reaches the body unchecked.
        __toolgate_call.guard(__TOOLGATE_PERMISSIONS)?;
        __toolgate_call.deny_unknown_arguments(&__TOOLGATE_KNOWN)?;
        #(#extract)*
        let __toolgate_out = #fn_ident(#(#bindings),*).await;
        #convert
    };
    let handler_body = quote_spanned! {fn_ident.span()=>
        ::toolgate::__private::tool_future(async move { #handler_body })
    };

    quote! {
        #user_fn

        #[doc(hidden)]
        #[allow(non_camel_case_types)]
        #vis struct #fn_ident {}

        // Two tools of one name in one module collide here, at compile time.
        #name_guard

        const _: () = {
            #permissions
            #(#described)*

            const __TOOLGATE_ARGUMENTS: [(&str, bool); #arg_count] = [#(#arguments),*];
            const __TOOLGATE_KNOWN: [&str; ::toolgate::__private::count_schema_arguments(&__TOOLGATE_ARGUMENTS)] =
                ::toolgate::__private::schema_arguments(&__TOOLGATE_ARGUMENTS);

            static __TOOLGATE_DEF: ::toolgate::__private::ToolDef = ::toolgate::__private::ToolDef {
                name: #name,
                description: #description,
                permissions: __TOOLGATE_PERMISSIONS,
                rust_path: ::core::concat!(::core::module_path!(), "::", #fn_name),
                input_schema: __toolgate_input_schema,
                output_schema: #output_schema,
                handler: __toolgate_handler,
            };

            impl ::toolgate::__private::Tool for #fn_ident {
                const DEF: &'static ::toolgate::__private::ToolDef = &__TOOLGATE_DEF;
            }

            ::toolgate::__private::inventory::submit! {
                ::toolgate::__private::ToolRegistration(&__TOOLGATE_DEF)
            }

            fn __toolgate_input_schema() -> ::toolgate::__private::JsonObject {
                let mut __toolgate_schema = ::toolgate::__private::InputSchema::new();
                #(#schema_args)*
                #[allow(unused_mut)]
                let mut __toolgate_finished = __toolgate_schema.finish();
                #refine
                __toolgate_finished
            }

            fn __toolgate_handler(
                __toolgate_call: ::toolgate::__private::ToolCall,
            ) -> ::toolgate::__private::ToolFuture {
                #handler_body
            }
        };
    }
}

/// The tool's permissions as one constant, so each path in the list is resolved and type-checked
/// once (one error per mistake), plus the assertion that no scope is listed twice.
fn permissions(permissions: &Permissions) -> TokenStream {
    let elements = permissions.elements.iter().map(|element| match element {
        PermissionElement::Literal(lit) => {
            quote!(::toolgate::__private::Permission::literal(#lit))
        }
        // Spanned at the path, so a constant of another type is reported there.
        PermissionElement::Path(path) => {
            quote_spanned!(path.span()=> ::toolgate::__private::permission(&#path))
        }
    });
    // Literals are compared by the macro; a constant's scope is known only to const evaluation.
    let distinct = permissions
        .span
        .filter(|_| permissions.has_paths())
        .map(|span| {
            quote_spanned! {span=>
                const _: () = ::toolgate::__private::assert_distinct(__TOOLGATE_PERMISSIONS);
            }
        });
    quote! {
        const __TOOLGATE_PERMISSIONS: &[::toolgate::__private::Permission] = &[#(#elements),*];
        #distinct
    }
}

/// The output schema fn and the conversion of `__toolgate_out`, each spanned at the type that decides
/// it, so an unsupported return type is reported there.
fn output(output: &Output) -> (TokenStream, TokenStream) {
    match output {
        Output::Plain(ty) => (
            quote_spanned!(ty.span()=> <#ty as ::toolgate::__private::ToolOutput>::output_schema),
            quote_spanned!(ty.span()=> <#ty as ::toolgate::__private::ToolOutput>::into_tool_result(__toolgate_out)),
        ),
        Output::Result { ok, err, whole } => {
            let into_error = match err {
                Some(err) => {
                    quote_spanned!(err.span()=> ::toolgate::__private::into_tool_error::<#err>)
                }
                None => quote_spanned!(whole.span()=> ::toolgate::__private::into_tool_error),
            };
            (
                quote_spanned!(ok.span()=> <#ok as ::toolgate::__private::ToolOutput>::output_schema),
                quote! {
                    match __toolgate_out {
                        ::core::result::Result::Ok(__toolgate_value) => {
                            <#ok as ::toolgate::__private::ToolOutput>::into_tool_result(__toolgate_value)
                        }
                        ::core::result::Result::Err(__toolgate_error) => {
                            ::core::result::Result::Err(#into_error(__toolgate_error))
                        }
                    }
                },
            )
        }
    }
}

/// Maps a valid tool name onto identifier characters, injectively.
fn encode_name(name: &str) -> String {
    name.chars()
        .map(|c| match c {
            '-' => "_h_".to_owned(),
            '.' => "_d_".to_owned(),
            '_' => "__".to_owned(),
            c => c.to_string(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors_of(attr: TokenStream, item: TokenStream) -> Vec<String> {
        let out = mcp_tool(attr, item).to_string();
        out.match_indices("compile_error !")
            .map(|(i, _)| {
                let rest = &out[i..];
                let start = rest.find('"').unwrap() + 1;
                let end = rest[start..].find("\" }").unwrap() + start;
                rest[start..end].to_owned()
            })
            .collect()
    }

    #[test]
    fn a_valid_tool_expands_without_errors() {
        let out = mcp_tool(
            quote!(
                name = "add",
                description = "Add",
                permissions = ["tool:add"]
            ),
            quote!(
                async fn add(a: i64, b: i64) -> i64 {
                    a + b
                }
            ),
        )
        .to_string();
        assert!(!out.contains("compile_error"), "{out}");
        assert!(out.contains("inventory :: submit"), "{out}");
        assert!(
            out.contains("Permission :: literal (\"tool:add\")"),
            "{out}"
        );
    }

    #[test]
    fn the_doc_comment_is_the_default_description() {
        let out = mcp_tool(
            quote!(),
            quote!(
                #[doc = " Adds two numbers."]
                async fn add(a: i64) -> i64 {
                    a
                }
            ),
        )
        .to_string();
        assert!(out.contains("description : \"Adds two numbers.\""), "{out}");
        assert!(out.contains("name : \"add\""), "{out}");
    }

    #[test]
    fn every_error_of_one_attribute_is_reported() {
        let errors = errors_of(
            quote!(name = "bad name", permission = ["x"], permissions = []),
            quote!(
                fn f() {}
            ),
        );
        assert_eq!(errors.len(), 5, "{errors:?}");
        assert!(
            errors
                .iter()
                .any(|e| e.contains("did you mean `permissions`")),
            "{errors:?}"
        );
        assert!(errors.iter().any(|e| e.contains("async fn")), "{errors:?}");
        assert!(
            errors.iter().any(|e| e.contains("`permissions` is empty")),
            "{errors:?}"
        );
        assert!(
            errors.iter().any(|e| e.contains("no description")),
            "{errors:?}"
        );
        assert!(
            errors.iter().any(|e| e.contains("contains ' '")),
            "{errors:?}"
        );
    }

    #[test]
    fn one_mistake_gives_one_error_and_keeps_the_fn() {
        let out = mcp_tool(
            quote!(permissions = ["a", "a"]),
            quote!(
                #[doc = "x"]
                async fn f() {}
            ),
        );
        let text = out.to_string();
        assert_eq!(text.matches("compile_error").count(), 1, "{text}");
        assert!(text.contains("listed twice"), "{text}");
        assert!(text.contains("async fn f"), "{text}");
    }

    #[test]
    fn the_argument_type_decides_injection_not_its_name() {
        let out = mcp_tool(
            quote!(description = "d"),
            quote!(
                async fn f(token: toolgate::AccessToken, #[arg(description = "n")] n: Option<u8>) {}
            ),
        )
        .to_string()
        .replace(' ', "");
        // Both go through their `ToolArgument` impl; none is singled out by its name.
        for ty in ["toolgate::AccessToken", "Option<u8>"] {
            let judged = format!("<{ty}as::toolgate::__private::ToolArgument<_>>");
            assert!(out.contains(&format!("{judged}::IN_SCHEMA")), "{out}");
            assert!(out.contains(&format!("{judged}::describe")), "{out}");
            assert!(out.contains(&format!("{judged}::extract")), "{out}");
        }
        // A description is only accepted where the type says the argument is in the schema.
        assert!(
            out.contains("assert_described_argument(<Option<u8>as"),
            "{out}"
        );
        assert!(
            !out.contains("#[arg"),
            "the #[arg] attribute must be stripped: {out}"
        );
    }

    #[test]
    fn name_encoding_is_injective_on_valid_names() {
        let names = ["a-b", "a_h_b", "a.b", "a_d_b", "a_b", "a__b"];
        let encoded: std::collections::HashSet<_> = names.iter().map(|n| encode_name(n)).collect();
        assert_eq!(encoded.len(), names.len());
    }
}
